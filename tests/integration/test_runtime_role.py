"""The function as the least-privilege runtime role of docs/deployment.md, on a real PostgreSQL.

The roles are made the way an operator makes them: ``login-etl migrate --create-roles`` as the
administrator, then ``login-etl migrate --runtime-role R`` as the migration role (which so owns
the tables). The handler then connects as R, holding only ``roles.RUNTIME_GRANTS``.

The batch tests of test_handler that reach every write path run here again, unchanged, with this
module's ``lambda_env`` (as R): the whole batch and its redelivery (the fast COPY path), the
bisection that isolates refused rows, and the lost race (the ON CONFLICT fallback through the
staging table).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pg8000.exceptions
import pytest
from conftest import Invoke, LogCapture
from integration.test_handler import (
    test_a_concurrent_writer_of_the_same_message_wins_the_race_without_a_second_row,
    test_exercise_batch_inserts_99_rows_and_rejects_the_malformed_one,
    test_redelivered_batch_adds_no_rows,
    test_rows_the_database_refuses_are_isolated_and_the_rest_inserted,
    valid_body,
)
from login_etl import handler
from login_etl.errors import PrivilegeError
from login_etl_cli.main import main
from login_etl_cli.roles import RUNTIME_GRANTS
from support.pg import TestDB, connect

__all__ = [
    "test_a_concurrent_writer_of_the_same_message_wins_the_race_without_a_second_row",
    "test_exercise_batch_inserts_99_rows_and_rejects_the_malformed_one",
    "test_redelivered_batch_adds_no_rows",
    "test_rows_the_database_refuses_are_isolated_and_the_rest_inserted",
]

EventFactory = Callable[..., dict[str, Any]]


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        (parts.scheme, f"{user}:{quote(password, safe='')}@{host}", parts.path, parts.query, "")
    )


class Roles:
    """A migration role and a runtime role, unique to one test (roles are cluster-wide)."""

    def __init__(self, db: TestDB) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.db = db
        self.migration = f"mig_{suffix}"
        self.runtime = f"run_{suffix}"
        self._passwords = {name: secrets.token_urlsafe(16) for name in (self.migration, self.runtime)}

    def url(self, role: str) -> str:
        return with_user(self.db.url, role, self._passwords[role])

    def set_passwords(self) -> None:
        for role, password in self._passwords.items():
            self.db.query(f"ALTER ROLE \"{role}\" PASSWORD '{password}'")

    def drop(self) -> None:
        self.db.query(f'DROP OWNED BY "{self.migration}", "{self.runtime}" CASCADE')
        for role in (self.runtime, self.migration):
            self.db.query(f'DROP ROLE IF EXISTS "{role}"')


def cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> None:
    with monkeypatch.context() as env:
        env.setenv("DATABASE_URL", url)
        env.delenv("DB_SECRET_ARN", raising=False)
        assert main(["migrate", *args]) == 0


@pytest.fixture
def roles(raw_db: TestDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roles]:
    made = Roles(raw_db)
    try:
        cli(monkeypatch, raw_db.url, "--create-roles", "--migration-role", made.migration,
            "--runtime-role", made.runtime)  # fmt: skip
        made.set_passwords()
        cli(monkeypatch, made.url(made.migration), "--runtime-role", made.runtime)
        yield made
    finally:
        made.drop()


@pytest.fixture
def lambda_env(roles: Roles, key_spec: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestDB]:
    """The deployed function's environment, connecting as the runtime role (no DDL, no migration).

    Assertions still read through ``roles.db`` (the administrator)."""
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", roles.url(roles.runtime))
    monkeypatch.setenv("PII_KEYS", key_spec)
    monkeypatch.setenv("AUTO_MIGRATE", "false")
    handler.reset()
    yield roles.db
    handler.reset()


def test_the_handler_really_connects_as_the_runtime_role(
    invoke_handler: Invoke, lambda_env: TestDB, roles: Roles, sqs_event: EventFactory
) -> None:
    assert invoke_handler(sqs_event([valid_body(1)])) == {"batchItemFailures": []}
    # Client sessions only: an autovacuum worker on this database shows with no user name.
    users = lambda_env.query(
        "SELECT DISTINCT usename FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    assert users == [[roles.runtime]]


def test_the_runtime_role_holds_exactly_the_documented_grants_even_after_a_wider_one(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles.db.query(f'GRANT ALL ON user_logins, user_logins_rejected TO "{roles.runtime}"')
    cli(monkeypatch, roles.url(roles.migration), "--runtime-role", roles.runtime)

    rows = roles.db.query(
        "SELECT table_name, privilege_type, '' FROM information_schema.role_table_grants WHERE grantee = :r "
        "UNION SELECT table_name, privilege_type, column_name FROM information_schema.column_privileges "
        "WHERE grantee = :r AND (table_name, privilege_type) NOT IN "
        "  (SELECT table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = :r)",
        r=roles.runtime,
    )
    granted: dict[str, set[str]] = {}
    for table, privilege, column in rows:
        granted.setdefault(table, set()).add(f"{privilege} ({column})" if column else privilege)
    assert granted == {
        "user_logins": {"SELECT", "INSERT"},
        "user_logins_rejected": {"INSERT", "SELECT (message_id)"},
        "user_logins_staging": {"SELECT", "INSERT", "DELETE"},
    }
    assert granted == {table: set(privileges) for table, privileges in RUNTIME_GRANTS.items()}


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT body_encrypted FROM user_logins_rejected",
        "UPDATE user_logins SET user_id = 'x'",
        "DELETE FROM user_logins",
        "DROP TABLE user_logins_staging",
        "CREATE TABLE stolen (x int)",
    ],
)
def test_the_runtime_role_can_neither_read_rejected_bodies_nor_change_history_nor_the_schema(
    roles: Roles, statement: str
) -> None:
    conn = connect(roles.url(roles.runtime))
    try:
        with pytest.raises(pg8000.exceptions.DatabaseError) as caught:
            conn.run(statement)
    finally:
        conn.close()
    assert caught.value.args[0]["C"] in ("42501",)


def test_the_old_documented_grant_is_one_deploy_error_line_and_the_batch_fails_whole(
    invoke_handler: Invoke, lambda_env: TestDB, roles: Roles, sqs_event: EventFactory, logs: LogCapture
) -> None:
    """A grant without the staging table (docs/deployment.md before it was tested) breaks the safe
    path: a refused row sends the batch there. That is a deploy error, not a row
    to reject and not an outage: nothing is written and one line names the fix."""
    roles.db.query(f'REVOKE ALL ON user_logins_staging FROM "{roles.runtime}"')
    # A row only the database refuses (validation refuses NUL and the like up front).
    roles.db.query("ALTER TABLE user_logins ADD CONSTRAINT t_refuse CHECK (user_id <> 'refused-4')")
    bodies = [valid_body(i) for i in range(10)]
    bodies[4] = valid_body(4, user_id="refused-4")

    with pytest.raises(PrivilegeError):
        invoke_handler(sqs_event(bodies))

    [line] = [x for x in logs.lines() if x["level"] == "ERROR"]
    assert line["message"] == "deploy error"
    assert line["error"] == (
        "the database role lacks a privilege (SQLSTATE 42501): "
        "grant it the runtime role's privileges (docs/deployment.md)"
    )
    assert logs.summaries() == []
    assert lambda_env.count("user_logins") == 0
    assert lambda_env.count("user_logins_rejected") == 0
