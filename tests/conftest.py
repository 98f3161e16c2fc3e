"""Shared fixtures: a REAL PostgreSQL and a REAL SQS API (moto server), never mocks.

PostgreSQL is ``DATABASE_URL`` when set, else an embedded server (pgserver). When neither is
available the database tests are skipped with a reason, except under ``LOGIN_ETL_REQUIRE_DB=1``
(CI sets it), where that is a failure.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from login_etl import handler
from login_etl.pii import KeyRing
from login_etl.store import PgStore
from login_etl_cli.context import LocalContext
from login_etl_cli.embedded import EmbeddedUnavailableError, embedded_postgres, moto_sqs
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB, connect

REPO = Path(__file__).resolve().parent.parent
EXERCISE = REPO / "data" / "exercise_logins.ndjson"
SHARED_EXERCISE = REPO.parent / "shared" / "data" / "exercise_logins.ndjson"


def exercise_bodies() -> list[str]:
    """The 100 exercise bodies (the repo's copy; identical to ../shared's when it is there)."""
    return EXERCISE.read_text("utf-8").splitlines()


def new_key_spec(key_id: str = "k1", size: int = 64) -> str:
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(size)).decode()}"


# --- PostgreSQL --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    try:
        with embedded_postgres() as embedded:
            yield embedded
    except EmbeddedUnavailableError as exc:
        if os.environ.get("LOGIN_ETL_REQUIRE_DB") == "1":
            pytest.fail(f"LOGIN_ETL_REQUIRE_DB=1 but no database: {exc}")
        pytest.skip(f"no PostgreSQL for this test: {exc}")


@pytest.fixture
def raw_db(pg_server_url: str) -> Iterator[TestDB]:
    """A fresh, empty database (not migrated)."""
    db = TestDB(pg_server_url)
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture
def db(raw_db: TestDB) -> TestDB:
    """A fresh database with the schema migrated."""
    store = PgStore(lambda: connect(raw_db.url))
    store.migrate()
    store.close()
    return raw_db


# --- keys and the handler ----------------------------------------------------------------------
@pytest.fixture
def key_spec() -> str:
    """A random key ring for this test only: there is no built-in key, even in tests."""
    return new_key_spec("k1")


@pytest.fixture
def keyring(key_spec: str) -> KeyRing:
    return KeyRing.from_spec(key_spec)


@pytest.fixture
def lambda_env(db: TestDB, key_spec: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestDB]:
    """The environment a deployed function would have, pointing at ``db``."""
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("PII_KEYS", key_spec)
    handler.reset()
    yield db
    handler.reset()


Invoke = Callable[[dict[str, Any]], Any]


@pytest.fixture
def invoke_handler(lambda_env: TestDB) -> Invoke:
    """Call the real ``lambda_handler`` as Lambda would: a fresh context each invocation."""

    def invoke(event: dict[str, Any]) -> Any:
        return handler.lambda_handler(event, LocalContext())

    return invoke


@pytest.fixture
def sqs_event() -> Callable[..., dict[str, Any]]:
    """Factory: ``sqs_event(bodies, **record_kwargs)`` -> a Lambda SQS event."""

    def build(bodies: list[str], **kwargs: Any) -> dict[str, Any]:
        return dict(make_event(make_record(body, **kwargs) for body in bodies))

    return build


# --- SQS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    """A real SQS API (moto server) on 127.0.0.1, shared by the session; create fresh queues."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    with moto_sqs() as endpoint:
        yield endpoint


@pytest.fixture
def secrets_client(sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's server speaks Secrets Manager too; point boto3 (and so Powertools) at it."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import base
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    monkeypatch.setenv("AWS_ENDPOINT_URL", sqs_endpoint)
    DEFAULT_PROVIDERS.clear()
    base.clear_caches()
    yield boto3.client("secretsmanager", endpoint_url=sqs_endpoint, region_name="us-east-1")
    DEFAULT_PROVIDERS.clear()
    base.clear_caches()


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """For tests that call the CLI's ``main`` in-process: it exports Powertools settings (log
    level, metrics off) for the handler it imports, which must not outlive the test."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("POWERTOOLS_")}
    yield
    for name in [k for k in os.environ if k.startswith("POWERTOOLS_")]:
        del os.environ[name]
    os.environ.update(saved)


# --- logs ------------------------------------------------------------------------------------------
class LogCapture:
    """The handler's Powertools JSON log lines, exactly as they would reach CloudWatch."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def summaries(self) -> list[dict[str, Any]]:
        """The "batch summary" lines, oldest first; ``clear()`` between invocations."""
        return [line for line in self.lines() if line.get("message") == "batch summary"]

    def clear(self) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    # Powertools' handler keeps the sys.stdout it saw at import, which capsys cannot swap, so
    # attach a second handler with the very same JSON formatter.
    capture = LogCapture()
    stream = logging.StreamHandler(capture.buffer)
    stream.setFormatter(handler.logger.registered_formatter)
    handler.logger.addHandler(stream)
    yield capture
    logging.getLogger(handler.logger.name).removeHandler(stream)


# --- the PII-leak guard, armed for every test ---------------------------
@pytest.fixture(autouse=True)
def pii_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every test: fail it if a raw ip/device_id of its data, a key or a password shows up in a log
    line, a metric, an exception message or the rejected table (support/pii_guard)."""
    from support.pii_guard import arm

    yield from arm(monkeypatch, request.node)


# --- nothing the suite starts may outlive it (support/leftovers) --------------------------------
def pytest_configure(config: pytest.Config) -> None:
    from support.leftovers import mark_session

    config.stash[_SESSION_MARK] = mark_session()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every fixture is torn down: fail the run if a process it started is still alive."""
    from support.leftovers import stop, survivors_after

    left = survivors_after(session.config.stash[_SESSION_MARK])
    if not left:
        return
    lines = "\n".join(f"  pid {pid}: {cmdline[:200]}" for pid, cmdline in left)
    session.config.get_terminal_writer().line(
        f"\nERROR: {len(left)} process(es) started by the test suite outlived it (now stopped):\n{lines}",
        red=True,
    )
    stop([pid for pid, _ in left])
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


_SESSION_MARK = pytest.StashKey[str]()
