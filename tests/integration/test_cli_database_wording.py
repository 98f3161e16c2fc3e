"""A database failure reads as one ``error:`` line that says "database" once.

The CLI prefixed every ``StoreError`` with ``database:``, and most of their messages already
begin by naming the database: ``error: database: database connection failed (...)``. The prefix
now stays only where the message does not say it is the database's (a statement timeout, TLS,
an unmigrated schema). Each failure below is met for real, through ``main`` as a user runs it.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest
from login_etl_cli.main import main
from support.pg import TestDB, with_database

pytestmark = pytest.mark.usefixtures("restore_environ")

KEYS = "k1:" + "A" * 86


def _closed_port_url(_: str, __: TestDB) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://u:pw@127.0.0.1:{port}/db"


def _tls_url(_: str, db: TestDB) -> str:
    return db.url + ("&" if "?" in db.url else "?") + "sslmode=require"


#: (how to reach the failure, command, the exact line, or a pattern for it)
CASES: dict[str, tuple[Callable[[str, TestDB], str], str, str]] = {
    "unreachable": (_closed_port_url, "migrate", r"error: database connection failed \(\w+\)"),
    "no such database": (
        lambda server, _: with_database(server, "no_such_database_here"),
        "migrate",
        re.escape("error: migration failed: the database does not exist (SQLSTATE 3D000)"),
    ),
    "schema not migrated": (
        lambda _, db: db.url,
        "rejects",
        re.escape("error: database: the schema is not migrated: run `login-etl migrate` (SQLSTATE 42P01)"),
    ),
    "TLS refused": (
        _tls_url,
        "rejects",
        re.escape(
            "error: database: the server does not offer TLS, "
            "which DB_SSLMODE or DATABASE_URL's sslmode asks for"
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_database_failure_says_database_once(
    case: str,
    pg_server_url: str,
    raw_db: TestDB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_url, command, expected = CASES[case]
    monkeypatch.setenv("DATABASE_URL", make_url(pg_server_url, raw_db))
    monkeypatch.setenv("PII_KEYS", KEYS)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    monkeypatch.delenv("DB_SSLMODE", raising=False)
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()

    assert main([command]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert re.fullmatch(expected, line), line
    assert len(re.findall(r"\bdatabase\b", line)) == 1, line
