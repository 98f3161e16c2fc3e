"""Soak: synthetic messages (10% invalid, 10% redelivered) through two concurrent drainer
processes, with faults injected at random intervals, then exact accounting and the throughput.

``test_soak_small`` (2,000 messages) runs in ``make test``; ``test_soak_100k`` is marked slow and
runs with ``make soak`` (``SOAK_MESSAGES`` overrides its size).

Shape of the run:

- the SQS API is a moto server process of its own (so it does not share this process's GIL with
  the fault proxy), and a producer thread keeps at most ``DEPTH`` messages not yet landed: moto's
  receive recomputes every queue attribute (a scan of the whole queue) for each message it
  returns, so a deep backlog would measure moto, not us;
- two ``support/drainer.py`` processes drain it through a fault proxy, each reporting 10% of its
  first deliveries failed after COMMIT (SQS redelivers them: duplicates, never second rows);
- a fault thread, every 1-4 s at random: drops the idle connections, refuses connections for a
  moment, cuts a connection mid-statement, cuts one right after COMMIT, or slows the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from login_etl_cli.embedded import use_fake_aws_credentials
from support.ledger import Ledger, in_queue, make_queues, send, synthetic
from support.pg import TestDB, connect
from support.pgcluster import free_port
from support.pii_guard import PiiGuard
from support.proxy import FaultProxy, target_of

DRAINER = Path(__file__).resolve().parents[1] / "support" / "drainer.py"
DEPTH = 60
REDELIVER = 0.10
INVALID = 0.10


def _faults(proxy: FaultProxy, stop: threading.Event, seed: int, fired: Counter[str]) -> None:
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(1.0, 4.0)):
        kind = rng.choice(["idle_drop", "refuse", "cut", "commit_cut", "slow"])
        fired[kind] += 1
        if kind == "idle_drop":
            proxy.down()
            proxy.up()
        elif kind == "refuse":
            proxy.refuse_for(rng.uniform(0.2, 1.0))
        elif kind == "cut":
            proxy.cut_after(rng.randrange(50, 4_000), then_refuse=False)
        elif kind == "commit_cut":
            proxy.cut_after_commit(1)
        else:
            proxy.delay(0.02)
            stop.wait(1.0)
            proxy.delay(0)


def _landed(conn: Any) -> int:
    rows = conn.run("SELECT (SELECT count(*) FROM user_logins) + (SELECT count(*) FROM user_logins_rejected)")
    return int(rows[0][0])


def _produce(
    sqs: Any, queue_url: str, db_url: str, bodies: list[str], sent: list[str], stop: threading.Event
) -> None:
    # Paced by what has landed in the database (cheap), not by polling the queue's attributes,
    # which costs moto a scan of the whole queue per call.
    conn = connect(db_url)
    try:
        for start in range(0, len(bodies), 100):
            while not stop.is_set() and len(sent) - _landed(conn) > DEPTH:
                time.sleep(0.1)
            if stop.is_set():
                return
            sent += send(sqs, queue_url, bodies[start : start + 100])
    finally:
        conn.close()


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server in its own process on 127.0.0.1; yields its endpoint."""
    use_fake_aws_credentials()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_soak(n: int, db: TestDB, key_spec: str, guard: PiiGuard, tmp_path: Path) -> dict[str, Any]:
    with moto_process() as endpoint:
        return _run_soak(n, db, endpoint, key_spec, guard, tmp_path)


def _run_soak(
    n: int, db: TestDB, sqs_endpoint: str, key_spec: str, guard: PiiGuard, tmp_path: Path
) -> dict[str, Any]:
    proxy = FaultProxy(target_of(db.url))
    user = urlsplit(db.url).username or "postgres"
    sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
    queue_url, dlq_url = make_queues(sqs, visibility_s=2, max_receive=10)
    bodies, invalid = synthetic(n, invalid_ratio=INVALID, seed=n)
    for body in bodies:
        guard.watch_body(body)
    env = {
        **os.environ,
        "DATABASE_URL": proxy.url_for(user, db.name),
        "PII_KEYS": key_spec,
        "DB_CONNECT_TIMEOUT": "2",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # failed batches still log; a summary per batch is noise here
        "POWERTOOLS_METRICS_NAMESPACE": "LoginEtlSoak",
    }
    outputs = [tmp_path / f"drainer-{i}.out" for i in range(2)]
    sent: list[str] = []
    stop = threading.Event()
    fired: Counter[str] = Counter()
    started = time.monotonic()
    producer = threading.Thread(
        target=_produce, args=(sqs, queue_url, db.url, bodies, sent, stop), daemon=True
    )
    faults = threading.Thread(target=_faults, args=(proxy, stop, n, fired), daemon=True)
    drainers = []
    for i, out in enumerate(outputs):
        with out.open("w") as sink:
            drainers.append(
                subprocess.Popen(
                    [
                        *(sys.executable, str(DRAINER), queue_url, sqs_endpoint, "--forever"),
                        *("--redeliver", str(REDELIVER), "--seed", str(i)),
                    ],
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    producer.start()
    faults.start()
    db_conn = connect(db.url)
    deadline = started + 120 + n / 30  # generous: the slowest full run seen was ~47 msg/s
    settled_at = None
    try:
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if producer.is_alive() or any(d.poll() is not None for d in drainers):
                if any(d.poll() is not None for d in drainers):
                    break  # a drainer died: stop and let the ledger say what happened
                continue
            done = _landed(db_conn)
            if done < len(sent) - 50:
                continue  # clearly not there yet: spare moto the queue scans below
            if done + in_queue(sqs, dlq_url) >= len(sent) and in_queue(sqs, queue_url) == 0:
                settled_at = time.monotonic()
                break
    finally:
        stop.set()
        proxy.up()
        proxy.delay(0)
        for drainer in drainers:
            drainer.send_signal(signal.SIGTERM)
        for drainer in drainers:
            try:
                drainer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                drainer.kill()
                drainer.wait()
        producer.join(timeout=10)
        faults.join(timeout=10)
        proxy.close()
        db_conn.close()
    stats = []
    for out in outputs:
        text = out.read_text(errors="replace")
        guard.check_text(f"soak {out.name}", text)
        lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"stats"')]
        stats.append(lines[-1] if lines else None)
    ledger = Ledger.read(db.query, sqs, queue_url, dlq_url, sent)
    elapsed = (settled_at or time.monotonic()) - started
    received = sum(s["stats"]["received"] for s in stats if s)
    report = {
        "messages": n,
        "invalid_sent": invalid,
        **ledger.summary(),
        "deliveries": received,
        "redeliveries": received - n,
        "forced_redeliveries": sum(s["forced_redeliveries"] for s in stats if s),
        "failed_deliveries": sum(s["stats"]["failed"] for s in stats if s),
        "faults_injected": dict(fired),
        "proxy_connections": proxy.connections,
        "elapsed_s": round(elapsed, 1),
        "throughput_msg_per_s": round(n / elapsed, 1),
        "drainers": [s["stats"] if s else "no final line" for s in stats],
    }
    print("\nSOAK " + json.dumps(report, indent=2, sort_keys=True))
    assert settled_at is not None, f"the soak did not settle: {report}"
    assert all(s is not None for s in stats), f"a drainer did not finish cleanly: {report}"
    assert len(sent) == n
    ledger.assert_exact()
    assert len(ledger.rejected) >= invalid  # invalid bodies, plus any refused by the database
    assert report["redeliveries"] > 0 and sum(fired.values()) > 0
    return report


def test_soak_small(db: TestDB, key_spec: str, pii_guard: PiiGuard, tmp_path: Path) -> None:
    run_soak(2_000, db, key_spec, pii_guard, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a shared 2-core VM has taken 24-35 min
def test_soak_100k(db: TestDB, key_spec: str, pii_guard: PiiGuard, tmp_path: Path) -> None:
    n = int(os.environ.get("SOAK_MESSAGES", "100000"))
    report = run_soak(n, db, key_spec, pii_guard, tmp_path)
    out = os.environ.get("SOAK_REPORT")
    if out:
        Path(out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
