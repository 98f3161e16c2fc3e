"""Failure classes are decided by type and SQLSTATE, never by message text."""

from __future__ import annotations

import pg8000.exceptions
import pytest
from login_etl.dberrors import classify
from login_etl.errors import RowRefusedError, StoreError, TransientStoreError


def server_error(code: str, message: str = "value 10.0.0.1 is bad", column: str | None = None) -> Exception:
    fields = {"S": "ERROR", "C": code, "M": message}
    if column:
        fields["c"] = column
    return pg8000.exceptions.DatabaseError(fields)


@pytest.mark.parametrize(
    "code", ["08006", "28P01", "28000", "57014", "57P01", "53300", "40001", "40P01", "55P03", "58030"]
)
def test_availability_problems_are_transient(code: str) -> None:
    assert isinstance(classify(server_error(code)), TransientStoreError)


@pytest.mark.parametrize(
    "exc", [pg8000.exceptions.InterfaceError("network error"), ConnectionResetError(), TimeoutError()]
)
def test_network_errors_are_transient_and_need_a_new_connection(exc: Exception) -> None:
    err = classify(exc)
    assert isinstance(err, TransientStoreError) and err.network


@pytest.mark.parametrize("code", ["22001", "22021", "23502", "23514", "54000"])
def test_data_problems_refuse_the_row(code: str) -> None:
    err = classify(server_error(code, column="user_id"))
    assert isinstance(err, RowRefusedError) and err.sqlstate == code and err.column == "user_id"


@pytest.mark.parametrize("code", ["42P01", "42601", "0A000"])
def test_other_server_errors_are_bugs(code: str) -> None:
    err = classify(server_error(code))
    assert type(err) is StoreError


def test_messages_never_carry_the_server_text_which_can_quote_values() -> None:
    for code in ("22021", "08006", "42P01"):
        assert "10.0.0.1" not in str(classify(server_error(code)))


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("28P01", "password authentication failed: wrong user or password (SQLSTATE 28P01)"),
        ("3D000", "the database does not exist (SQLSTATE 3D000)"),
        ("42P01", "the schema is not migrated: run `login-etl migrate` (SQLSTATE 42P01)"),
        ("57014", "a statement ran past the statement timeout (SQLSTATE 57014)"),
        ("08006", "database is unavailable (SQLSTATE 08006)"),
        ("42601", "unexpected database error (SQLSTATE 42601)"),
    ],
)
def test_common_failures_say_what_happened_then_the_sqlstate(code: str, words: str) -> None:
    assert str(classify(server_error(code))) == words


def test_a_server_without_tls_when_tls_was_asked_for_is_said_plainly() -> None:
    err = classify(pg8000.exceptions.InterfaceError("Server refuses SSL"))
    assert isinstance(err, TransientStoreError) and err.network
    assert str(err) == "the server does not offer TLS, which DB_SSLMODE or DATABASE_URL's sslmode asks for"


def test_a_server_error_masked_by_pg8000s_failed_goodbye_is_still_classified_by_its_sqlstate() -> None:
    """pg8000 closes with a Terminate message after a FATAL startup error; if the server already
    closed the socket, that write fails and the InterfaceError hides the server's error."""
    try:
        try:
            raise server_error("3D000", "database x does not exist")
        except pg8000.exceptions.DatabaseError:
            try:
                raise BrokenPipeError(32, "Broken pipe")
            except OSError as pipe:
                raise pg8000.exceptions.InterfaceError("network error") from pipe
    except pg8000.exceptions.InterfaceError as masked:
        assert str(classify(masked)) == "the database does not exist (SQLSTATE 3D000)"
