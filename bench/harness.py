"""What every ``make bench`` case shares: the environment it runs in (set before anything
imports Powertools or pycryptodome), the database, the data, the deployment package, and
``Bench``, which holds the connection, the key and the results.
"""

from __future__ import annotations

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
from login_etl_cli.lambda_event import make_record  # noqa: E402
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

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_SECRET_ARN")}
        env.update(BENCH_ENV, DATABASE_URL=self.url, PII_KEYS=self.key_spec, **extra)
        return env
