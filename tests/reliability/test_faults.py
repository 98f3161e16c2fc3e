"""Fault injection through the real drain path: moto's SQS API -> runner.drain -> the handler ->
a TCP fault proxy -> a real PostgreSQL. Every case ends with exact accounting (support.ledger):
each sent message is exactly once in user_logins, user_logins_rejected or the DLQ; no duplicate
rows; the queue and the staging table empty."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from conftest import LogCapture
from login_etl import handler
from login_etl.store import PgStore
from login_etl_cli.runner import DrainStats, drain, drain_until_settled
from support.ledger import Ledger, in_queue, make_queues, send, synthetic
from support.pg import TestDB, connect
from support.pgcluster import LocalCluster, pgserver_bin
from support.proxy import FaultProxy, target_of

REPO = Path(__file__).resolve().parents[2]
DRAINER = REPO / "tests" / "support" / "drainer.py"

Fault = Callable[[], None]


class FaultyHandler:
    """The real handler, with a fault fired just before chosen invocations (1-based)."""

    def __init__(self, faults: dict[int, Fault] | None = None) -> None:
        self.faults = faults or {}
        self.calls = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.calls += 1
        fault = self.faults.get(self.calls)
        if fault is not None:
            fault()
        return handler.lambda_handler(event, context)


@dataclass
class Rig:
    """A queue + DLQ, a database behind a fault proxy, and the handler's environment."""

    db: TestDB
    proxy: FaultProxy
    sqs: Any
    endpoint: str
    queue_url: str
    dlq_url: str
    env: dict[str, str]
    sent: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    stats: list[DrainStats] = field(default_factory=list)

    def send(self, bodies: list[str]) -> None:
        self.bodies += bodies
        self.sent += send(self.sqs, self.queue_url, bodies)

    def drain_settled(self, call: Callable[..., Any] | None = None, *, timeout_s: float = 60) -> None:
        _, settled = drain_until_settled(
            self.sqs,
            self.queue_url,
            timeout_s=timeout_s,
            handler=call,
            on_drain=self.stats.append,
            pause_s=0.5,
        )
        assert settled, f"the queue did not settle within {timeout_s} s"

    def ledger(self) -> Ledger:
        return Ledger.read(self.db.query, self.sqs, self.queue_url, self.dlq_url, self.sent)

    def failed(self) -> int:
        return sum(s.failed for s in self.stats)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A drainer process (tests/support/drainer.py) with this rig's environment."""
        return subprocess.Popen(
            [sys.executable, str(DRAINER), self.queue_url, self.endpoint, *args],
            env={**os.environ, **self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def finish(proc: subprocess.Popen[str], guard: Any, timeout_s: float = 60) -> dict[str, Any] | None:
    """Wait for a drainer; hand its output to the PII guard; return its final stats line."""
    out, err = proc.communicate(timeout=timeout_s)
    guard.check_text("drainer stdout", out)
    guard.check_text("drainer stderr", err)
    for line in reversed(out.splitlines()):
        if line.startswith('{"stats"'):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    return None


@pytest.fixture
def rig(
    lambda_env: TestDB, sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch, pii_guard: Any
) -> Iterator[Rig]:
    proxy = FaultProxy(target_of(lambda_env.url))
    user = urlsplit(lambda_env.url).username or "postgres"
    url = proxy.url_for(user, lambda_env.name)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    handler.reset()
    sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
    queue_url, dlq_url = make_queues(sqs, visibility_s=1, max_receive=5)
    env = {
        "DATABASE_URL": url,
        "PII_KEYS": os.environ["PII_KEYS"],
        "DB_CONNECT_TIMEOUT": "2",
        "POWERTOOLS_METRICS_NAMESPACE": "LoginEtlTest",
    }
    yield Rig(lambda_env, proxy, sqs, sqs_endpoint, queue_url, dlq_url, env)
    handler.reset()
    proxy.close()


def heal_later(proxy: FaultProxy, seconds: float) -> None:
    timer = threading.Timer(seconds, proxy.up)
    timer.daemon = True
    timer.start()


# --- the connection drops: before, during, after ------------------------------------------------
def test_connection_dropped_before_the_insert_is_survived(rig: Rig) -> None:
    bodies, _ = synthetic(120, invalid_ratio=0.1, seed=1)
    rig.send(bodies)

    def idle_drop() -> None:  # the socket dies while idle: the store reconnects silently
        rig.proxy.down()
        rig.proxy.up()

    faults = {3: idle_drop, 6: lambda: rig.proxy.refuse_for(1.5)}  # and one the reconnect cannot fix
    rig.drain_settled(FaultyHandler(faults))

    rig.ledger().assert_exact()
    assert rig.failed() > 0  # the refused batch really went back to SQS
    assert rig.proxy.connections >= 3


def test_connection_dropped_during_the_insert_commits_nothing_and_is_retried(rig: Rig) -> None:
    bodies, _ = synthetic(120, invalid_ratio=0.1, seed=2)
    rig.send(bodies)

    def cut_mid_copy() -> None:
        # Inside this batch's COPY data; the reconnect is refused too, so the batch fails whole.
        rig.proxy.cut_after(700, then_refuse=True)
        heal_later(rig.proxy, 1.5)

    rig.drain_settled(FaultyHandler({4: cut_mid_copy}))

    assert rig.proxy.fired.get("cut") == 1
    rig.ledger().assert_exact()
    assert rig.failed() > 0


@pytest.mark.parametrize("reconnect", ["allowed", "refused"])
def test_connection_dropped_after_commit_before_the_answer_gives_duplicates_not_rows(
    rig: Rig, logs: LogCapture, reconnect: str
) -> None:
    bodies, _ = synthetic(100, invalid_ratio=0.1, seed=3)
    rig.send(bodies)

    def cut_after_commit() -> None:
        # allowed: the store's one reconnect replays the batch at once; refused: SQS redelivers it.
        rig.proxy.cut_after_commit(1, then_refuse_s=1.5 if reconnect == "refused" else 0.0)

    rig.drain_settled(FaultyHandler({3: cut_after_commit}))

    assert rig.proxy.fired.get("commit_cut") == 1
    ledger = rig.ledger()
    ledger.assert_exact()
    summaries = logs.summaries()
    # The committed-but-unacknowledged batch came back and counted as duplicates.
    assert sum(s["duplicates"] for s in summaries) >= 1
    # The replayed batch found its own rows: they count as duplicates, once, and as nothing else.
    assert sum(s["inserted"] + s["duplicates"] for s in summaries) == len(ledger.rows)
    if reconnect == "refused":
        assert rig.failed() > 0


# --- the server itself ----------------------------------------------------------------------------
@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A PostgreSQL of its own, so restarting it disturbs no other test."""
    bin_dir = pgserver_bin()
    if bin_dir is None:
        pytest.skip("pgserver is not installed")
    cluster = LocalCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def forget_connection(db: TestDB) -> None:
    """Drop the test's own (now dead) connection so the next query opens a fresh one."""
    conn, db._conn = db._conn, None
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


def test_postgres_restarted_mid_drain_loses_nothing(
    own_cluster: LocalCluster, sqs_endpoint: str, key_spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = TestDB(own_cluster.url())
    try:
        PgStore(lambda: connect(db.url)).migrate()
        monkeypatch.setenv("DATABASE_URL", db.url)
        monkeypatch.setenv("PII_KEYS", key_spec)
        monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
        for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
            monkeypatch.delenv(name, raising=False)
        handler.reset()
        sqs = boto3.client("sqs", endpoint_url=sqs_endpoint)
        queue_url, dlq_url = make_queues(sqs, visibility_s=1, max_receive=10)
        bodies, _ = synthetic(150, invalid_ratio=0.1, seed=4)
        sent = send(sqs, queue_url, bodies)
        [[started_before]] = db.query("SELECT pg_postmaster_start_time()")
        forget_connection(db)

        def restart() -> None:  # a real stop now; the start comes back while the drain goes on
            own_cluster.stop("fast")
            threading.Timer(1.5, own_cluster.start).start()

        stats: list[DrainStats] = []
        faulty = FaultyHandler({4: restart})
        _, settled = drain_until_settled(
            sqs, queue_url, timeout_s=90, handler=faulty, on_drain=stats.append, pause_s=0.5
        )
        assert settled, "the queue did not settle within 90 s"

        forget_connection(db)
        [[started_after]] = db.query("SELECT pg_postmaster_start_time()")
        assert started_after > started_before  # it really restarted
        assert sum(s.failed for s in stats) > 0
        Ledger.read(db.query, sqs, queue_url, dlq_url, sent).assert_exact()
    finally:
        handler.reset()
        db.drop()


def test_statement_timeout_is_transient_and_the_batch_lands_after_the_lock(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "500")
    handler.reset()
    bodies, _ = synthetic(60, invalid_ratio=0.0, seed=5)
    rig.send(bodies)
    locker = connect(rig.db.url)

    def lock_the_table() -> None:
        locker.run("BEGIN")
        locker.run("LOCK TABLE user_logins IN ACCESS EXCLUSIVE MODE")
        threading.Timer(2.0, lambda: locker.run("COMMIT")).start()

    try:
        rig.drain_settled(FaultyHandler({2: lock_the_table}))
    finally:
        locker.close()

    rig.ledger().assert_exact()
    assert rig.failed() > 0
    errors = [s.get("error", "") for s in logs.summaries() if s["failed"]]
    assert any("57014" in e for e in errors), errors


def test_slow_database_past_the_function_timeout_then_killed_loses_nothing(rig: Rig, pii_guard: Any) -> None:
    bodies, _ = synthetic(80, invalid_ratio=0.1, seed=6)
    rig.send(bodies)
    rig.proxy.delay(0.3)  # every client->server chunk waits: a batch takes seconds
    victim = rig.spawn("--forever")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and rig.proxy.connections == 0:
        time.sleep(0.1)
    time.sleep(2.5)  # well into its first batches
    victim.send_signal(signal.SIGKILL)  # what Lambda does at the function timeout
    finish(victim, pii_guard)
    assert victim.returncode == -signal.SIGKILL
    assert in_queue(rig.sqs, rig.queue_url) > 0  # it died with work in flight

    rig.proxy.delay(0)
    rig.drain_settled()

    rig.ledger().assert_exact()


def test_visibility_timeout_expiring_mid_batch_means_two_drainers_one_row_each(
    rig: Rig, pii_guard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies, _ = synthetic(10, invalid_ratio=0.0, seed=7)
    rig.send(bodies)  # one batch; the queue's visibility timeout is 1 s
    rig.proxy.delay(0.4)  # drainer A (a process) talks to the database slowly
    slow = rig.spawn()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and in_queue(rig.sqs, rig.queue_url) == 10:
        attrs = rig.sqs.get_queue_attributes(
            QueueUrl=rig.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 10:
            break
        time.sleep(0.05)
    # Drainer B (this process, straight to the database) gets the same messages once A's
    # visibility timeout has expired, while A is still inside its batch.
    time.sleep(1.2)
    monkeypatch.setenv("DATABASE_URL", rig.db.url)
    handler.reset()
    b_stats = drain(rig.sqs, rig.queue_url, batch_size=10)
    a = finish(slow, pii_guard)
    rig.drain_settled()

    assert a is not None
    # Both processed all ten (more if the other one held them past a visibility timeout again).
    assert a["stats"]["received"] >= 10 and b_stats.received >= 10
    ledger = rig.ledger()
    ledger.assert_exact()
    assert len(ledger.rows) == 10


def test_database_down_past_max_receive_dead_letters_everything_and_a_redrive_lands_it(
    rig: Rig,
) -> None:
    bodies, _ = synthetic(40, invalid_ratio=0.2, seed=8)
    rig.send(bodies)
    rig.proxy.down()
    rig.drain_settled(timeout_s=90)

    down = rig.ledger()
    down.assert_exact()
    assert len(down.dlq) == len(bodies) and not down.rows and not down.rejected

    # Redrive (the runbook's start-message-move-task; moto lacks it, so receive + send + delete).
    rig.proxy.up()
    moved: list[str] = []
    for _ in range(100):
        got = rig.sqs.receive_message(QueueUrl=rig.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            break
        moved += send(rig.sqs, rig.queue_url, [m["Body"] for m in messages])
        for m in messages:
            rig.sqs.delete_message(QueueUrl=rig.dlq_url, ReceiptHandle=m["ReceiptHandle"])
    assert len(moved) == len(bodies)
    rig.sent = moved  # the redriven messages are the ones to account for now
    rig.drain_settled()

    after = rig.ledger()
    after.assert_exact()
    assert not after.dlq
    assert len(after.rows) + len(after.rejected) == len(bodies)
