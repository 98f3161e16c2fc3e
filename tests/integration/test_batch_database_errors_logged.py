"""A database error that retrying cannot fix, met at a batch, is one clear log line, then raises.

With ``AUTO_MIGRATE`` off (the stack's default) the first contact with the database is the
batch's insert, not the startup migration. A database that does not exist, or a schema nobody
migrated, is neither transient (no ``batch summary`` with ``failed``) nor a missing grant
(``deploy error``): the batch raises. The runbook (docs/operations.md) looks for the cause in the
function's JSON lines, so there must be one, naming it in plain words with the SQLSTATE, and
nothing written. A table over the two an operator meets on a fresh deploy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import LogCapture
from login_etl import handler
from login_etl.errors import StoreError, TransientStoreError
from login_etl_cli.context import LocalContext
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB, with_database

BODY = '{"user_id": "u1", "app_version": "1.0", "device_type": "ios", "ip": "10.4.0.1", "device_id": "d-1"}'

#: (id, the DATABASE_URL given a fresh unmigrated database, the line's error)
CASES: list[tuple[str, Callable[[TestDB], str], str]] = [
    (
        "schema not migrated",
        lambda db: db.url,
        "the schema is not migrated: run `login-etl migrate` (SQLSTATE 42P01)",
    ),
    (
        "no such database",
        lambda db: with_database(db.url, "no_such_database_here"),
        "the database does not exist (SQLSTATE 3D000)",
    ),
]


@pytest.mark.parametrize(("url_of", "error"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_database_error_at_a_batch_is_one_clear_line_and_the_batch_raises(
    url_of: Callable[[TestDB], str],
    error: str,
    raw_db: TestDB,
    key_spec: str,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
) -> None:
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", url_of(raw_db))
    monkeypatch.setenv("PII_KEYS", key_spec)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    handler.reset()
    try:
        with pytest.raises(StoreError) as caught:
            handler.lambda_handler(dict(make_event([make_record(BODY)])), LocalContext())
    finally:
        handler.reset()

    assert not isinstance(caught.value, TransientStoreError)
    errors = [line for line in logs.lines() if line["level"] == "ERROR"]
    assert [(line["message"], line["error"]) for line in errors] == [("database error", error)]
    assert logs.summaries() == []
    tables = raw_db.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'user_logins%'")
    assert tables == [[0]], "nothing was created or written"
