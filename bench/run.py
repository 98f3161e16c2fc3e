"""``make bench``: the handler against the physical limit and the usual approach, in one run.

Against a real PostgreSQL (``DATABASE_URL`` when set, else an embedded pgserver PostgreSQL 16 on a
unix socket), in a throwaway database, it measures:

- **limit**: ``psql \\copy`` of the very rows the handler wrote, from a prepared file, into
  ``user_logins`` with its unique index (server-side COPY, then pg8000 COPY, when psql is absent);
- **naive**: Powertools ``BatchProcessor`` + pycryptodome ``MODE_SIV`` per field + one committed
  INSERT per record (``bench/naive.py``), at 10 and 1,000 records only (10,000 takes 10+ s);
- **ours**: the real ``lambda_handler`` on a pre-built Lambda SQS event, warm connection, fresh
  table per repetition, at 10, 1,000, 10,000 records and the largest event under Lambda's 6 MB
  payload limit; then **redelivery**: the same event again, every record already present;
- the insert alone (``PgStore.write_batch``) and the bulk-insert alternatives it was chosen over;
- the transform per record (parse, validate, mask, version), per masked field, and pycryptodome's;
- cold start (fresh process: import the handler and build its runtime, no DB connect) and peak
  RSS of a fresh process handling the largest event.

Every ratio is taken inside this one run; every time is the median of several repetitions. The
event is built outside the timed region; TRUNCATE happens between repetitions, untimed.
POWERTOOLS_METRICS_DISABLED=true and POWERTOOLS_LOG_LEVEL=WARNING, so log printing is not timed.
Prints a table and writes ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results.json"
#: Lambda's invocation payload limit (synchronous invoke, which the SQS event source mapping uses).
LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
SENT_MS = 1_764_000_000_000  # a fixed SentTimestamp, so every run writes the same create_date
COLUMNS = "user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, message_id"

# Set before anything imports Powertools: its Logger reads the level when it is built.
BENCH_ENV = {
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "login-etl-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "LoginEtlBench",
}
os.environ.update(BENCH_ENV)
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))  # tests/support: the helpers the tests share

# What ships to Lambda (function/requirements.txt) has no cffi, so there pycryptodome talks to its
# C code through ctypes. The dev venv has cffi (moto -> cryptography), which pycryptodome prefers:
# it adds ~35 ms of import (pycparser) and ~3 us per AES call. Measure what ships, unless asked.
WITH_CFFI = "--with-cffi" in sys.argv
HIDE_CFFI = "" if WITH_CFFI else "import sys; sys.modules['cffi'] = None\n"
if not WITH_CFFI:
    sys.modules["cffi"] = None  # type: ignore[assignment]

import pg8000.native  # noqa: E402
from login_etl.config import DbSettings, parse_database_url  # noqa: E402
from login_etl.connection import open_connection  # noqa: E402
from login_etl_cli.lambda_event import make_event, make_record  # noqa: E402
from support.pg import with_database  # noqa: E402


# --- small helpers -------------------------------------------------------------------------------
def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(fn: Callable[[], Any], reps: int, setup: Callable[[], Any] | None = None) -> list[float]:
    """Wall seconds of ``fn`` per repetition; ``setup`` runs before each one, outside the clock."""
    out = []
    for _ in range(reps):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def connect(url: str) -> pg8000.native.Connection:
    """A connection made the way the function makes it (TCP_NODELAY on TCP)."""
    return open_connection(parse_database_url(url), DbSettings(url=url, statement_timeout_ms=0))


@contextlib.contextmanager
def server() -> Iterator[tuple[str, str]]:
    """(server URL, how it was obtained)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url, "DATABASE_URL"
        return
    from login_etl_cli.embedded import embedded_postgres

    with embedded_postgres() as embedded:
        yield embedded, "embedded pgserver (unix socket)"


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = "bench_" + uuid.uuid4().hex[:12]
    admin = connect(server_url)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# --- data ----------------------------------------------------------------------------------------
def synthetic_bodies(n: int, seed: int = 5) -> list[str]:
    """Exercise-shaped bodies with all-unique user ids, ips and device ids (29% null locale)."""
    rng = Random(seed)
    locales = ["RU", "PH", "US", "BR", "ID", "CN", "FR", "PL", "SE", "PT"]
    ips: set[str] = set()
    devices: set[str] = set()
    bodies: list[str] = []
    while len(bodies) < n:
        ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        device = f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        if ip in ips or device in devices:
            continue
        ips.add(ip)
        devices.add(device)
        body = {
            "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "app_version": f"{rng.randint(0, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
            "device_type": rng.choice(["android", "ios"]),
            "ip": ip,
            "locale": None if rng.random() < 0.29 else rng.choice(locales),
            "device_id": device,
        }
        bodies.append(json.dumps(body))
    return bodies


def build_records(bodies: list[str], seed: int = 7) -> list[Any]:
    rng = Random(seed)
    return [
        make_record(
            body,
            message_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            sent_timestamp_ms=SENT_MS + i,
        )
        for i, body in enumerate(bodies)
    ]


def largest_event_size(records: list[Any]) -> int:
    """The most of these records whose Lambda event JSON stays under the 6 MB payload limit."""
    sizes = [len(json.dumps(r, separators=(",", ":"))) + 1 for r in records]
    total = len('{"Records":[]}')
    for count, size in enumerate(sizes):
        if total + size > LAMBDA_PAYLOAD_LIMIT:
            return count
        total += size
    return len(records)


# --- the deployment package ---------------------------------------------------------------------
#: The form the build ships; the targets are judged on it, and the other form is shown beside it.
SHIPPED = "precompiled"
# Runs in a fresh ``python -I -S`` with only the deployment package on sys.path: ``init`` imports
# the handler and builds its runtime (no connection); ``first`` imports it and handles one event
# (connect, migration check, the batch), the work of a Lambda container's first invocation.
COLD_CHILD = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
sys.path[:0] = sys.argv[1].split(__import__("os").pathsep)
import login_etl.handler as h
t1, c1 = time.perf_counter(), time.process_time()
import json
out = {"import_ms": (t1 - t0) * 1000, "import_cpu_ms": (c1 - c0) * 1000}
if sys.argv[2] == "init":
    h.get_runtime()
    out["init_ms"] = (time.perf_counter() - t1) * 1000
else:
    from types import SimpleNamespace
    with open(sys.argv[3]) as f:
        event = json.load(f)  # the runtime decodes the payload before calling the handler
    ctx = SimpleNamespace(function_name="login-etl-bench", memory_limit_in_mb=1024, aws_request_id="cold",
        invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:login-etl-bench",
        get_remaining_time_in_millis=lambda: 60_000)
    t2 = time.perf_counter()
    response = h.lambda_handler(event, ctx)
    t3 = time.perf_counter()
    assert not response["batchItemFailures"], response
    out["handler_ms"] = (t3 - t2) * 1000
    out["first_ms"] = (t1 - t0 + t3 - t2) * 1000
out["boto3"] = "boto3" in sys.modules
out["botocore_client"] = "botocore.client" in sys.modules
print(json.dumps(out))
"""


def deployment_package() -> Path:
    """The package ``sam build`` makes (function/Makefile), built for this interpreter and cached
    outside the clone by the hash of function/ and this Python's version."""
    import hashlib

    source = REPO / "function"
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    cache = Path(os.environ.get("LOGIN_ETL_CACHE") or Path.home() / ".cache" / "login-etl")
    target = cache / f"bench-package-py{sys.version_info[0]}{sys.version_info[1]}-{digest.hexdigest()[:12]}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        say(f"bench: building the deployment package into {target} (function/Makefile) ...")
        platform_tag = "manylinux2014_aarch64" if platform.machine() == "aarch64" else "manylinux2014_x86_64"
        subprocess.run(
            ["make", "--no-print-directory", "-s", "-C", str(source), "build-LoginEtlFunction",
             f"ARTIFACTS_DIR={target}", f"PYTHON={sys.executable}", f"PLATFORM={platform_tag}"],
            check=True,
        )  # fmt: skip
        (target / ".complete").touch()
    return target


# --- the bench -----------------------------------------------------------------------------------
class Bench:
    def __init__(self, url: str, quick: bool) -> None:
        self.url = url
        self.quick = quick
        self.admin = connect(url)
        self.key = secrets.token_bytes(64)
        self.key_spec = "k1:" + base64.b64encode(self.key).decode()
        os.environ.update({"DATABASE_URL": url, "PII_KEYS": self.key_spec, "AUTO_MIGRATE": "true"})
        for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID"):
            os.environ.pop(name, None)
        self.results: dict[str, Any] = {"cases": []}
        self.tmp = Path(tempfile.mkdtemp(prefix="login-etl-bench-"))
        # The server may run as another OS user (server-side COPY): it must read this directory.
        os.chmod(self.tmp, 0o755)  # noqa: S103

    def reps(self, n: int) -> int:
        full = 31 if n <= 10 else 15 if n <= 1000 else 9
        return max(3, full // 3) if self.quick else full

    def truncate(self) -> None:
        self.admin.run("TRUNCATE user_logins, user_logins_rejected")

    def count(self) -> int:
        return int(self.admin.run("SELECT count(*) FROM user_logins")[0][0])

    def dump_rows(self) -> bytes:
        buf = io.BytesIO()
        self.admin.run(f"COPY user_logins ({COLUMNS}) TO STDOUT", stream=buf)
        return buf.getvalue()

    def case(self, name: str, n: int, times: list[float], **extra: Any) -> dict[str, Any]:
        med = median(times)
        row = {
            "case": name,
            "records": n,
            "reps": len(times),
            "median_ms": med * 1000,
            "min_ms": min(times) * 1000,
            "per_record_us": med * 1e6 / n,
            **extra,
        }
        self.results["cases"].append(row)
        say(f"  {name:<28} n={n:<6} {med * 1000:9.2f} ms  ({med * 1e6 / n:8.2f} us/record)")
        return row

    # --- ours --------------------------------------------------------------------------------
    def run_ours(self, events: dict[int, dict[str, Any]]) -> dict[int, bytes]:
        from login_etl import handler
        from login_etl_cli.context import LocalContext

        captured: list[Any] = []
        handler.reset()
        warm = make_event(build_records(synthetic_bodies(10, seed=99), seed=98))
        handler.lambda_handler(dict(warm), LocalContext())  # connect + migrate, untimed
        runtime = handler.get_runtime()
        observe = captured.append
        runtime.on_outcome.append(observe)  # each batch's own transform/insert split
        store = runtime.store
        dumps: dict[int, bytes] = {}
        trips: dict[str, dict[int, int]] = {"fresh": {}, "redelivered": {}}
        for n, event in events.items():
            reps = self.reps(n)
            fresh: list[float] = []
            again: list[float] = []
            split: list[tuple[float, float]] = []
            cpu_ms: list[float] = []
            for _ in range(reps):
                self.truncate()
                # Both timed runs start from a checkpoint, so neither pays for the other's dirty
                # pages being written back behind it (2 cores: the server competes with us).
                self.admin.run("CHECKPOINT")
                captured.clear()
                before = store.round_trips
                ctx = LocalContext()
                cpu = time.process_time()
                started = time.perf_counter()
                response = handler.lambda_handler(event, ctx)
                fresh.append(time.perf_counter() - started)
                cpu_ms.append((time.process_time() - cpu) * 1000)
                trips["fresh"][n] = store.round_trips - before
                outcome = captured[-1]
                assert not response["batchItemFailures"] and outcome.inserted == n, outcome.summary()
                split.append((outcome.transform_ms, outcome.insert_ms))
                # Redelivery: the very same event, every record already there.
                self.admin.run("CHECKPOINT")
                before = store.round_trips
                ctx = LocalContext()
                started = time.perf_counter()
                handler.lambda_handler(event, ctx)
                again.append(time.perf_counter() - started)
                trips["redelivered"][n] = store.round_trips - before
                assert captured[-1].duplicates == n, captured[-1].summary()
            assert self.count() == n
            dumps[n] = self.dump_rows()
            transform_ms = median([t for t, _ in split])
            insert_ms = median([i for _, i in split])
            self.case(
                "ours",
                n,
                fresh,
                transform_ms=transform_ms,
                insert_ms=insert_ms,
                cpu_ms=median(cpu_ms),
                round_trips=trips["fresh"][n],
            )
            self.case("ours, redelivered", n, again, round_trips=trips["redelivered"][n])
            self.results.setdefault("redelivery_ratio", {})[str(n)] = median(again) / median(fresh)
        runtime.on_outcome.remove(observe)
        self.results["round_trips"] = {k: {str(n): c for n, c in v.items()} for k, v in trips.items()}
        return dumps

    # --- naive -------------------------------------------------------------------------------
    def run_naive(self, events: dict[int, dict[str, Any]], dumps: dict[int, bytes]) -> None:
        from login_etl_cli.context import LocalContext
        from naive import NaiveHandler

        naive = NaiveHandler(self.url, "k1", self.key)
        try:
            naive(dict(make_event(build_records(synthetic_bodies(10, seed=99), seed=98))), LocalContext())
            for n, event in events.items():
                reps = 9 if n <= 10 else 3

                def call(e: dict[str, Any] = event) -> Any:
                    return naive(e, LocalContext())

                times = timed(call, reps, setup=self.truncate)
                # Same rows, byte for byte, as the handler wrote: a like-for-like comparison.
                same = sorted(self.dump_rows().splitlines()) == sorted(dumps[n].splitlines())
                assert same, "naive rows differ from ours"
                self.case("naive", n, times, same_rows_as_ours=same)
        finally:
            naive.close()

    # --- the limit and the insert alternatives ----------------------------------------------
    def psql_path(self) -> str | None:
        found = shutil.which("psql")
        if found:
            return found
        try:
            import pgserver

            bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
            return str(bundled) if bundled.exists() else None
        except ImportError:
            return None

    def run_limit(self, n: int, payload: bytes) -> str:
        path = self.tmp / f"rows_{n}.copy"
        path.write_bytes(payload)
        os.chmod(path, 0o644)
        reps = self.reps(n) + 4
        psql = self.psql_path()
        if psql is not None:
            lines = ["\\set ON_ERROR_STOP on", "\\timing on"]
            for _ in range(reps):
                lines += ["TRUNCATE user_logins;", f"\\copy user_logins ({COLUMNS}) FROM '{path}'"]
            out = subprocess.run(
                [psql, "-X", "-q", "-d", self.url, "-f", "-"],
                input="\n".join(lines) + "\n",
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            ms = [float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")]
            times = [t / 1000 for t in ms[1::2]]  # TRUNCATE, \copy, TRUNCATE, \copy, ...
            method = "psql \\copy from a prepared file (psql's own \\timing)"
        else:
            try:
                sql = f"COPY user_logins ({COLUMNS}) FROM '{path}'"
                times = timed(lambda: self.admin.run(sql), reps, setup=self.truncate)
                method = "server-side COPY from a prepared file (no psql found)"
            except pg8000.native.DatabaseError:
                times = self._pg8000_copy_times(payload, reps)
                method = "pg8000 COPY FROM STDIN (no psql, server cannot read the file)"
        assert self.count() == n
        self.case("limit", n, times, method=method)
        return method

    def _pg8000_copy_times(self, payload: bytes, reps: int) -> list[float]:
        sql = f"COPY user_logins ({COLUMNS}) FROM STDIN"
        return timed(lambda: self.admin.run(sql, stream=io.BytesIO(payload)), reps, setup=self.truncate)

    def run_insert_methods(self, n: int, payload: bytes, rows: list[Any]) -> None:
        """The insert alone, and the alternatives: same rows, same table, same index, warm connection."""
        from login_etl import handler

        store = handler.get_runtime().store
        reps = self.reps(n)

        def refused(index: int, err: Any) -> Any:
            raise AssertionError("no row is refused here")

        ours = timed(lambda: store.write_batch(rows, [], refused), reps, setup=self.truncate)
        assert self.count() == n
        self.case(
            "insert: ours (lookup + COPY)", n, ours, note="PgStore.write_batch: BEGIN, lookup, COPY, COMMIT"
        )
        again = timed(lambda: store.write_batch(rows, [], refused), reps)
        self.case("insert: ours, all duplicates", n, again)
        self.case("insert: pg8000 COPY direct", n, self._pg8000_copy_times(payload, reps), idempotent=False)

        # The safe path, taken only after losing a race to a concurrent writer (or to isolate a
        # refused row): COPY into staging, then one move with ON CONFLICT, on a warm connection.
        conn = connect(self.url)
        try:
            from login_etl.store import _COPY_ROWS, _MOVE_ROWS, _copy_payload

            def safe_batch() -> None:
                conn.run("BEGIN")
                conn.run(_COPY_ROWS, stream=io.BytesIO(_copy_payload(rows)))
                conn.run(_MOVE_ROWS)
                conn.run("COMMIT")

            self.case(
                "insert: safe path (staging + ON CONFLICT)",
                n,
                timed(safe_batch, reps, setup=self.truncate),
                note="taken only after a lost race",
            )
            assert self.count() == n
            # Client-side formatting of the COPY text (included in ours, excluded from the limit).
            self.results["copy_payload_ms"] = {
                "records": n,
                "store_copy_payload": median(timed(lambda: _copy_payload(rows), reps + 4)) * 1000,
            }
            cols = list(zip(*rows, strict=True))
            unnest = (
                f"INSERT INTO user_logins ({COLUMNS}) SELECT * FROM unnest("
                "CAST(:a AS varchar[]), CAST(:b AS varchar[]), CAST(:c AS varchar[]), "
                "CAST(:d AS varchar[]), CAST(:e AS varchar[]), CAST(:f AS int[]), "
                "CAST(:g AS date[]), CAST(:h AS varchar[])) ON CONFLICT (message_id) DO NOTHING"
            )
            params = dict(zip("abcdefgh", (list(c) for c in cols), strict=True))
            times = timed(lambda: conn.run(unnest, **params), reps, setup=self.truncate)
            assert self.count() == n
            self.case("insert: unnest arrays", n, times, idempotent=True)
            single = (
                f"INSERT INTO user_logins ({COLUMNS}) VALUES (:a, :b, :c, :d, :e, :f, :g, :h) "
                "ON CONFLICT (message_id) DO NOTHING"
            )

            def per_row() -> None:
                conn.run("BEGIN")
                for r in rows:
                    conn.run(single, **dict(zip("abcdefgh", r, strict=True)))
                conn.run("COMMIT")

            times = timed(per_row, 3, setup=self.truncate)
            assert self.count() == n
            self.case("insert: one INSERT per row", n, times, idempotent=True, note="one transaction")
        finally:
            conn.close()

    # --- transform ---------------------------------------------------------------------------
    def run_transform(self, records: list[Any]) -> list[Any]:
        from login_etl.batch import process_batch
        from login_etl.constants import AD_DEVICE_ID, AD_IP
        from login_etl.pii import KeyRing
        from login_etl.records import parse_logins
        from login_etl.store import WriteResult
        from naive import NaiveMasker

        ring = KeyRing.from_spec(self.key_spec)
        kept: list[Any] = []

        class NoStore:  # the write is measured elsewhere; here only the per-record work counts
            def write_batch(self, rows: Any, rejects: Any, on_refused: Any) -> Any:
                kept[:] = rows
                return WriteResult(len(rows), 0, 0, ())

        n = len(records)
        reps = 3 if self.quick else 15  # the fastest of these is the figure judged (see targets)
        per_record = [process_batch(records, ring, NoStore()).transform_ms * 1000 / n for _ in range(reps)]
        bodies = [r["body"] for r in records]
        parse = [t * 1e6 / n for t in timed(lambda: parse_logins(bodies), reps)]
        logins = [x for x in parse_logins(bodies) if not isinstance(x, Exception)]
        assert len(logins) == n
        # Unique values of the real length mix (dotted quads, ddd-dd-dddd device ids), masked the
        # way process_batch masks them: each field of the whole batch in one call.
        ips = [x.ip for x in logins]
        devices = [x.device_id for x in logins]
        fields = [(v, AD_IP) for v in ips] + [(v, AD_DEVICE_ID) for v in devices]
        mask_many = ring.mask_many
        batch = [
            t * 1e6 / len(fields)
            for t in timed(lambda: (mask_many(ips, AD_IP), mask_many(devices, AD_DEVICE_ID)), reps)
        ]
        mask = ring.mask
        single = [t * 1e6 / len(fields) for t in timed(lambda: [mask(v, ad) for v, ad in fields], reps)]
        siv = NaiveMasker("k1", self.key)
        some = fields[: len(fields) // 10]
        theirs = [t * 1e6 / len(some) for t in timed(lambda: [siv.mask(v, ad) for v, ad in some], 3)]
        # Byte identity with pycryptodome's MODE_SIV, on every field of the batch.
        masked = mask_many(ips, AD_IP) + mask_many(devices, AD_DEVICE_ID)
        identical = all(siv.mask(v, ad) == m for (v, ad), m in zip(fields, masked, strict=True))
        lengths = sorted(len(v.encode()) for v, _ in fields)
        self.results["transform"] = {
            "records": n,
            "per_record_us": median(per_record),
            "per_record_us_min": min(per_record),
            "parse_validate_version_us": median(parse),
            "mask_per_field_us": median(batch),
            "mask_per_field_us_min": min(batch),
            "mask_single_per_field_us": median(single),
            "mask_identical_to_pycryptodome": identical,
            "mask_fields_checked": len(fields),
            "field_bytes": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]},
            "pycryptodome_siv_per_field_us": median(theirs),
            "siv_speedup": median(theirs) / median(batch),
        }
        t = self.results["transform"]
        say(
            f"  transform {t['per_record_us']:.2f} us/record (parse+validate+version "
            f"{t['parse_validate_version_us']:.2f}); mask {t['mask_per_field_us']:.2f} us/field batched, "
            f"{t['mask_single_per_field_us']:.2f} one by one, vs pycryptodome "
            f"{t['pycryptodome_siv_per_field_us']:.2f} ({t['siv_speedup']:.1f}x); identical: "
            f"{t['mask_identical_to_pycryptodome']}"
        )
        return kept

    # --- fresh processes ---------------------------------------------------------------------
    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET_ARN")}
        env.update(BENCH_ENV, DATABASE_URL=self.url, PII_KEYS=self.key_spec, **extra)
        return env

    def run_cold_start(self, event: dict[str, Any]) -> None:
        """Fresh processes on the deployment package alone (what function/Makefile builds: function/
        and function/requirements.txt, no dev-only packages such as cffi), in two forms: as shipped,
        with bytecode, and without (what SAM's pip builder would ship: /var/task is read-only, so
        every cold start would compile every module it imports)."""
        path = str(deployment_package())
        event_path = self.tmp / "first_event.json"
        event_path.write_text(json.dumps(event))
        variants = {
            # -I -S: none of this venv's site-packages, no user site, no PYTHON* variables. The
            # package's own .pyc files (what the build ships) are used as they are; for the form
            # without bytecode, Python looks for .pyc only under an empty prefix and writes none.
            "precompiled": [sys.executable, "-I", "-S", "-B"],
            "no bytecode": [sys.executable, "-I", "-S", "-B", "-X", f"pycache_prefix={self.tmp / 'none'}"],
        }
        reps = 5 if self.quick else 11
        init_env = self.child_env(AUTO_MIGRATE="false")
        first_env = self.child_env(AUTO_MIGRATE="true")
        # Warm the OS page cache for both forms.
        for argv in variants.values():
            subprocess.run(
                [*argv, "-c", COLD_CHILD, path, "init"], env=init_env, check=True, capture_output=True
            )
        out: dict[str, Any] = {"reps": reps, "python_flags": "-I -S", "variants": {}}
        bare: list[float] = []
        for name, argv in variants.items():
            raw: list[float] = []
            inner: list[dict[str, Any]] = []
            first: list[dict[str, Any]] = []
            for _ in range(reps):  # interleaved with a bare interpreter, so both see the same noise
                started = time.perf_counter()
                subprocess.run([*argv, "-c", "pass"], env=init_env, check=True)
                bare.append(time.perf_counter() - started)
                started = time.perf_counter()
                result = subprocess.run(
                    [*argv, "-c", COLD_CHILD, path, "init"],
                    env=init_env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                raw.append(time.perf_counter() - started)
                inner.append(json.loads(result.stdout.splitlines()[-1]))
                self.truncate()
                result = subprocess.run(
                    [*argv, "-c", COLD_CHILD, path, "first", str(event_path)],
                    env=first_env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                first.append(json.loads(result.stdout.splitlines()[-1]))
            out["variants"][name] = {
                "raw_ms": median(raw) * 1000,
                "import_ms": median([i["import_ms"] for i in inner]),
                "import_cpu_ms": median([i["import_cpu_ms"] for i in inner]),
                "import_cpu_ms_min": min(i["import_cpu_ms"] for i in inner),
                "init_ms": median([i["init_ms"] for i in inner]),
                "first_invocation_ms": median([f["first_ms"] for f in first]),
                "first_handler_ms": median([f["handler_ms"] for f in first]),
                "boto3_imported": any(i["boto3"] or f["boto3"] for i, f in zip(inner, first, strict=True)),
                "botocore_client_imported": any(i["botocore_client"] for i in inner),
            }
        out["bare_python_ms"] = median(bare) * 1000
        out["first_event_records"] = len(event["Records"])
        self.results["cold_start"] = out
        for name, v in out["variants"].items():
            say(
                f"  {name}: import {v['import_ms']:.1f} ms (CPU {v['import_cpu_ms']:.1f}) "
                f"+ init {v['init_ms']:.1f} "
                f"(process {v['raw_ms']:.1f}, bare python {out['bare_python_ms']:.1f}); first invocation "
                f"{v['first_invocation_ms']:.1f} ms (handler {v['first_handler_ms']:.1f}); "
                f"boto3 imported: {v['boto3_imported']}"
            )

    def run_peak_rss(self, events: dict[str, dict[str, Any]]) -> None:
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child would report
        # this (bigger) bench process's peak.
        code = HIDE_CFFI + (
            "import json, sys\n"
            "from login_etl import handler\n"
            "from login_etl_cli.context import LocalContext\n"
            "def vm(key):\n"
            "    with open('/proc/self/status') as f:\n"
            "        return next(int(x.split()[1]) for x in f if x.startswith(key + ':'))\n"
            "base = vm('VmHWM')\n"
            "with open(sys.argv[1], 'rb') as f:\n"
            "    event = json.loads(f.read())  # as the Lambda runtime does with the payload\n"
            "response = handler.lambda_handler(event, LocalContext())\n"
            "assert not response['batchItemFailures']\n"
            "peak = vm('VmHWM')\n"
            "print(json.dumps({'after_import_mb': base / 1024, 'peak_mb': peak / 1024}))\n"
        )
        memory: dict[str, Any] = {}
        for label, event in events.items():
            path = self.tmp / f"event_{label}.json"
            path.write_text(json.dumps(event, separators=(",", ":")))
            self.truncate()
            out = subprocess.run(
                [sys.executable, "-c", code, str(path)],
                env=self.child_env(AUTO_MIGRATE="false"),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            got = json.loads(out.splitlines()[-1])
            memory[label] = {
                "records": len(event["Records"]),
                "event_bytes": path.stat().st_size,
                **got,
            }
            say(f"  peak RSS {label}: {got['peak_mb']:.1f} MB (imports {got['after_import_mb']:.1f} MB)")
        self.results["memory"] = memory


# --- report --------------------------------------------------------------------------------------
def _backend() -> str:
    from Crypto.Util import _raw_api

    return str(_raw_api.backend)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem_gb = round(mem_kb / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def find(results: dict[str, Any], case: str, n: int) -> dict[str, Any] | None:
    return next((c for c in results["cases"] if c["case"] == case and c["records"] == n), None)


def targets(r: dict[str, Any], largest: int) -> list[dict[str, Any]]:
    """Issue 11's targets, then what must be kept from the first round, each measured in this run."""
    t = r["transform"]
    # The per-record costs are CPU-bound loops in this process: judged on the fastest repetition
    # (timeit's convention: slower ones measure the other processes on the two shared cores),
    # with the median beside it. The ratios below compare medians taken side by side.
    out: list[tuple[str, str, str, bool | None]] = [
        (
            "masking, unique values of the real length mix",
            "<= 2 us/field, byte-identical to MODE_SIV",
            f"{t['mask_per_field_us_min']:.2f} us/field (median {t['mask_per_field_us']:.2f}), identical on "
            f"{t['mask_fields_checked']:,}: {str(t['mask_identical_to_pycryptodome']).lower()}",
            t["mask_per_field_us_min"] <= 2 and t["mask_identical_to_pycryptodome"],
        ),
        (
            "whole transform, 10,000 records",
            "<= 6 us/record",
            f"{t['per_record_us_min']:.2f} us/record (median {t['per_record_us']:.2f})",
            t["per_record_us_min"] <= 6,
        ),
    ]
    ours_10k, limit_10k = find(r, "ours", 10_000), find(r, "limit", 10_000)
    if ours_10k and limit_10k:
        ratio = ours_10k["median_ms"] / limit_10k["median_ms"]
        out.append(("end to end vs psql \\copy, 10,000 records", "<= 3x", f"{ratio:.2f}x", ratio <= 3))
    ours_1k, naive_1k = find(r, "ours", 1000), find(r, "naive", 1000)
    if ours_1k and naive_1k:
        ratio = naive_1k["median_ms"] / ours_1k["median_ms"]
        out.append(("end to end vs naive, 1,000 records", ">= 50x", f"{ratio:.1f}x", ratio >= 50))
    c = r["cold_start"]
    shipped = c["variants"][SHIPPED]
    other = next(v for name, v in c["variants"].items() if name != SHIPPED)
    # Judged on the import's CPU time: on Lambda the function has its CPU share to itself, while
    # here wall time also counts the other processes on two shared cores (shown beside it).
    out.append(
        (
            f"handler import, deployment package ({SHIPPED})",
            "<= 100 ms (aim 60)",
            f"{shipped['import_cpu_ms_min']:.0f} ms CPU (median {shipped['import_cpu_ms']:.0f}; wall "
            f"{shipped['import_ms']:.0f}); without bytecode {other['import_cpu_ms_min']:.0f} ms CPU",
            shipped["import_cpu_ms_min"] <= 100,
        )
    )
    warm = find(r, "ours", 10)
    out.append(
        (
            f"first invocation, fresh process ({c['first_event_records']} records)",
            "measured, next to warm",
            f"{shipped['first_invocation_ms']:.0f} ms (warm: {warm['median_ms']:.1f} ms)" if warm else "",
            None,
        )
    )
    # Kept from the first round.
    fresh = find(r, "insert: ours (lookup + COPY)", 10_000)
    dup = find(r, "insert: ours, all duplicates", 10_000)
    if fresh and dup:
        ratio = dup["median_ms"] / fresh["median_ms"]
        whole = ", ".join(f"{n}: {x:.2f}x" for n, x in r["redelivery_ratio"].items())
        out.append(
            (
                "redelivery vs fresh, insert of 10,000",
                "<= 1.0x",
                f"{ratio:.2f}x (handler {whole})",
                ratio <= 1.0,
            )
        )
    trips = r["round_trips"]["fresh"]
    out.append(
        (
            "round trips per batch, constant",
            "same at every size",
            ", ".join(f"{n}: {k}" for n, k in trips.items()),
            len(set(trips.values())) == 1,
        )
    )
    boto3 = any(v["boto3_imported"] for v in c["variants"].values())
    out.append(("boto3 not imported without an ARN", "not imported", str(not boto3).lower(), not boto3))
    peak = r["memory"][f"largest ({largest})"]["peak_mb"]
    out.append((f"peak RSS, largest event ({largest})", "<= 150 MB", f"{peak:.0f} MB", peak <= 150))
    return [{"target": a, "goal": b, "measured": m, "met": ok} for a, b, m, ok in out]


def table(r: dict[str, Any]) -> str:
    limits = {c["records"]: c["median_ms"] for c in r["cases"] if c["case"] == "limit"}
    naive = {c["records"]: c["median_ms"] for c in r["cases"] if c["case"] == "naive"}
    lines = [
        "| case | records | median ms | µs/record | x limit | naive / this | round trips |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in r["cases"]:
        n = c["records"]
        vs_limit = f"{c['median_ms'] / limits[n]:.2f}" if n in limits else ""
        vs_naive = f"{naive[n] / c['median_ms']:.1f}" if n in naive and c["case"] != "naive" else ""
        lines.append(
            f"| {c['case']} | {n:,} | {c['median_ms']:.2f} | {c['per_record_us']:.2f} | {vs_limit} | "
            f"{vs_naive} | {c.get('round_trips', '')} |"
        )
    return "\n".join(lines)


def report(r: dict[str, Any]) -> str:
    t, c = r["transform"], r["cold_start"]
    out = [
        f"login-etl bench, {r['generated_at']}",
        f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['memory_gb']} GB, "
        f"Python {r['machine']['python']}",
        f"database: {r['database']['version']} via {r['database']['source']}",
        f"limit: {r['limit_method']}",
        f"pycryptodome backend: {r['settings']['pycryptodome_backend']} (what ships to Lambda has no cffi)",
        "times: median of the reps; ratios inside this run; naive only at 10 and 1,000 records",
        "",
        table(r),
        "",
        f"transform: {t['per_record_us']:.2f} µs/record, fastest {t['per_record_us_min']:.2f} "
        f"(parse+validate+version "
        f"{t['parse_validate_version_us']:.2f}), mask {t['mask_per_field_us']:.2f} µs/field, "
        f"pycryptodome MODE_SIV {t['pycryptodome_siv_per_field_us']:.2f} µs/field ({t['siv_speedup']:.1f}x)",
    ]
    ours_10k = find(r, "ours", 10_000)
    if ours_10k:
        out.append(
            f"ours, 10,000 records: {ours_10k['median_ms']:.1f} ms wall = transform "
            f"{ours_10k['transform_ms']:.1f} + insert {ours_10k['insert_ms']:.1f} (+ handler); CPU time in "
            f"this process {ours_10k['cpu_ms']:.1f} ms (the rest is PostgreSQL, and waiting for a core)"
        )
    cp = r.get("copy_payload_ms")
    if cp:
        out.append(
            f"COPY text formatting ({cp['records']:,} rows, client side, inside ours, outside the limit): "
            f"{cp['store_copy_payload']:.2f} ms"
        )
    for name, v in c["variants"].items():
        out.append(
            f"fresh process, deployment package, {name}: import {v['import_ms']:.1f} ms "
            f"(CPU {v['import_cpu_ms']:.1f} ms) + init "
            f"{v['init_ms']:.1f} ms (process {v['raw_ms']:.1f} ms, bare python "
            f"{c['bare_python_ms']:.1f} ms); first invocation {v['first_invocation_ms']:.1f} ms "
            f"(import + handler {v['first_handler_ms']:.1f} ms: connect, migration check, "
            f"{c['first_event_records']} records)"
        )
    for label, m in r["memory"].items():
        out.append(
            f"peak RSS {label}: {m['peak_mb']:.1f} MB ({m['event_bytes'] / 1e6:.2f} MB event; "
            f"{m['after_import_mb']:.1f} MB after imports)"
        )
    out += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
    for x in r["targets"]:
        met = "-" if x["met"] is None else "yes" if x["met"] else "NO"
        out.append(f"| {x['target']} | {x['goal']} | {x['measured']} | {met} |")
    return "\n".join(out)


def model(r: dict[str, Any]) -> dict[str, Any]:
    """Batch latency ~ fixed + per_record * n, fitted on ours at the smallest and 10,000 records."""
    ours = sorted((c["records"], c["median_ms"]) for c in r["cases"] if c["case"] == "ours")
    (n0, t0), (n1, t1) = ours[0], next(x for x in ours if x[0] == 10_000)
    per_record_ms = (t1 - t0) / (n1 - n0)
    return {
        "fixed_ms": max(t0 - per_record_ms * n0, 0.0),
        "per_record_us": per_record_ms * 1000,
        "transform_us": r["transform"]["per_record_us"],
        "cold_start_ms": r["cold_start"]["variants"][SHIPPED]["first_invocation_ms"],
        "peak_rss_mb": max(m["peak_mb"] for m in r["memory"].values()),
        "round_trips_per_batch": r["round_trips"]["fresh"].get("10000"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument(
        "--with-cffi", action="store_true", help="let pycryptodome use cffi, as the dev venv does"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()
    started = time.perf_counter()
    with server() as (server_url, source), scratch_database(server_url) as url:
        bench = Bench(url, args.quick)
        try:
            version = bench.admin.run("SHOW server_version")[0][0]
            say(f"bench: PostgreSQL {version} via {source}; building events ...")
            records = build_records(synthetic_bodies(10_000))
            largest = largest_event_size(records)
            sizes = [10, 1000, 10_000, largest]
            events = {n: dict(make_event(records[:n])) for n in sizes}
            say(f"bench: the largest event under 6 MB holds {largest:,} records")
            say("transform:")
            rows = bench.run_transform(records)
            say("ours (real lambda_handler, warm connection):")
            # Even with POWERTOOLS_METRICS_DISABLED, Metrics prints its EMF blob whenever 100
            # values pile up (and the ColdStart metric once): keep it out of the report.
            with contextlib.redirect_stdout(io.StringIO()):
                dumps = bench.run_ours(events)
            say("limit:")
            method = ""
            for n in (1000, 10_000):
                method = bench.run_limit(n, dumps[n])
            say("insert methods:")
            bench.run_insert_methods(10_000, dumps[10_000], rows)
            say("naive (BatchProcessor + pycryptodome SIV + INSERT per record), 10 and 1,000 only:")
            bench.run_naive({n: events[n] for n in (10, 1000)}, dumps)
            say("fresh processes (the deployment package alone):")
            bench.run_cold_start(events[10])
            bench.run_peak_rss({f"largest ({largest})": events[largest], "10000": events[10_000]})
            r = bench.results
            r["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            r["machine"] = machine()
            r["database"] = {"version": f"PostgreSQL {version}", "source": source}
            r["limit_method"] = method
            r["largest_event_records"] = largest
            r["settings"] = {**BENCH_ENV, "quick": args.quick, "pycryptodome_backend": _backend()}
            r["targets"] = targets(r, largest)
            r["model"] = model(r)
            r["elapsed_s"] = time.perf_counter() - started
        finally:
            bench.admin.close()
            shutil.rmtree(bench.tmp, ignore_errors=True)
    args.output.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(report(r))
    print(f"\n(wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}; "
          f"{r['elapsed_s']:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
