"""Common database failures, met for real, say what happened in plain words, then the SQLSTATE.

Each goes through the CLI (one ``error:`` line, exit 1, no traceback) and, where the function
meets it, the Lambda handler's ``startup failed`` line. A wrong password needs a server that
checks passwords: tests/reliability/test_tls.py meets it.
"""

from __future__ import annotations

import pytest
from conftest import LogCapture
from login_etl import handler
from login_etl.errors import StoreError
from login_etl_cli.context import LocalContext
from login_etl_cli.main import main
from support.pg import TestDB, with_database

#: ``main`` exports Powertools settings for the handler; undo them after each test.
pytestmark = pytest.mark.usefixtures("restore_environ")

KEYS = "k1:" + "A" * 86


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> str:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PII_KEYS", KEYS)
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_missing_database_is_named_as_such(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], logs: LogCapture
) -> None:
    url = with_database(pg_server_url, "no_such_database_here")
    assert _cli(monkeypatch, capsys, url, "migrate") == (
        "error: migration failed: the database does not exist (SQLSTATE 3D000)\n"
    )
    handler.reset()
    try:
        with pytest.raises(StoreError):
            handler.lambda_handler({"Records": []}, LocalContext())
    finally:
        handler.reset()
    [line] = [x for x in logs.lines() if x["message"] == "startup failed"]
    assert line["error"] == "migration failed: the database does not exist (SQLSTATE 3D000)"


def test_an_unmigrated_schema_says_to_run_migrate(
    raw_db: TestDB, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, capsys, raw_db.url, "rejects") == (
        "error: database: the schema is not migrated: run `login-etl migrate` (SQLSTATE 42P01)\n"
    )


def test_tls_asked_of_a_server_without_it_is_said_plainly(
    db: TestDB, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The embedded server answers "no" to TLS (pgserver is built without it, and a Unix socket
    # never offers it): asking for it must fail, never fall back to plaintext.
    monkeypatch.setenv("DB_SSLMODE", "disable")
    url = db.url + ("&" if "?" in db.url else "?") + "sslmode=require"
    assert _cli(monkeypatch, capsys, url, "rejects") == (
        "error: database: the server does not offer TLS, "
        "which DB_SSLMODE or DATABASE_URL's sslmode asks for\n"
    )
