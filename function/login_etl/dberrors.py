"""The one place where database failures are classified: by exception type and SQLSTATE.

- ``TransientStoreError``: the network, the server's availability, or a timeout; the same batch
  can succeed later, so its records are reported failed and SQS redelivers them.
- ``RowRefusedError``: the data itself (SQLSTATE classes 22, 23, 54); retrying cannot help, so
  the offending row is isolated and rejected as ``db_rejected``.
- ``PrivilegeError`` (SQLSTATE 42501): the role lacks a grant, a deploy error; the batch fails
  whole and the handler logs one line naming the runtime role's grants (docs/deployment.md);
- anything else (a syntax error, a missing table): a bug, wrapped in ``StoreError`` and raised.

Messages never carry the server's text, which can quote row values (PII); only SQLSTATE codes and
column names are kept. The common failures an operator meets say what happened in plain words,
with the SQLSTATE after it. They never name the user or the database either: a URL with an
unescaped character in its password can put part of the password there.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, Final

import pg8000.exceptions

from .errors import PrivilegeError, RowRefusedError, StoreError, TransientStoreError

__all__ = ["classify", "sqlstate"]

# 08 connection exception, 53 insufficient resources, 57 operator intervention (57014 is a
# statement timeout or cancel, 57P01 an admin shutdown), 40 transaction rollback (serialization,
# deadlock), 55P03 lock not available, 58 system error (I/O), XX internal error, and 28
# authorization (a password rotated in Secrets Manager is re-read within SECRETS_MAX_AGE, so a
# retry can succeed; until then the messages wait safely in the queue, then the DLQ).
_TRANSIENT_CLASSES: Final = frozenset({"08", "28", "53", "57", "40", "58", "XX"})
_TRANSIENT_CODES: Final = frozenset({"55P03"})
# 22 data exception, 23 integrity constraint violation, 54 program limit (e.g. index row too big).
_ROW_CLASSES: Final = frozenset({"22", "23", "54"})
_INSUFFICIENT_PRIVILEGE: Final = "42501"
#: What the common SQLSTATEs mean, for the operator reading the error.
_PLAIN: Final = {
    "28P01": "password authentication failed: wrong user or password",
    "28000": "the server refused this user from this host (pg_hba.conf, or no such role)",
    "3D000": "the database does not exist",
    "42P01": "the schema is not migrated: run `login-etl migrate`",
    "57014": "a statement ran past the statement timeout",
    "57P01": "the server is shutting down",
    "57P03": "the server is starting up or in recovery",
    "53300": "the server has too many connections",
    "25006": "a read-only query tried to write (writes go through a transaction)",
}
#: pg8000 reports a server that answers "no" to the TLS request only by this fixed message of its
#: own (no SQLSTATE: the server never gets that far), so this one case is matched by text.
_TLS_REFUSED: Final = "Server refuses SSL"


def _fields(exc: BaseException) -> dict[str, Any]:
    if exc.args and isinstance(exc.args[0], dict):
        return exc.args[0]
    return {}


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE pg8000 attached to a server error, if any."""
    code = _fields(exc).get("C")
    return code if isinstance(code, str) else None


def _unmasked(exc: BaseException) -> BaseException:
    """The server's own error when pg8000 hid it behind a network error.

    When the server refuses a session at startup (a missing database, a wrong password) it sends
    its error and closes the socket; pg8000 then says goodbye on the closed socket, and the
    resulting ``InterfaceError`` replaces the server's error, which survives only in the exception
    context. Without this, "the database does not exist" would read "connection failed" now and
    then, depending on who closes first.
    """
    seen = exc
    for _ in range(4):
        context = seen.__context__
        if context is None:
            break
        if isinstance(context, pg8000.exceptions.DatabaseError) and sqlstate(context) is not None:
            server_error: BaseException = context
            return server_error
        seen = context
    return exc


def classify(exc: BaseException) -> StoreError:
    """Translate a driver or socket exception into the package's ``StoreError`` hierarchy.

    The caller raises the result ``from exc``. Network-level errors are ``TransientStoreError``
    with ``network=True`` so the caller knows the connection is unusable and must be replaced.
    """
    if isinstance(exc, StoreError):
        return exc
    exc = _unmasked(exc)
    if isinstance(exc, pg8000.exceptions.InterfaceError) and str(exc) == _TLS_REFUSED:
        return TransientStoreError(
            "the server does not offer TLS, which DB_SSLMODE or DATABASE_URL's sslmode asks for",
            network=True,
        )
    if isinstance(exc, pg8000.exceptions.InterfaceError | OSError | socket.timeout | ssl.SSLError):
        return TransientStoreError(f"database connection failed ({type(exc).__name__})", network=True)
    code = sqlstate(exc)
    if code is not None:
        raw_column = _fields(exc).get("c")
        column = raw_column if isinstance(raw_column, str) else None
        plain = _PLAIN.get(code)
        if code[:2] in _TRANSIENT_CLASSES or code in _TRANSIENT_CODES:
            # A session-level failure (08, 28, 57P0x shutdown) leaves the connection unusable.
            network = code[:2] in ("08", "28") or code.startswith("57P")
            what = plain or "database is unavailable"
            return TransientStoreError(f"{what} (SQLSTATE {code})", network=network)
        if code == _INSUFFICIENT_PRIVILEGE:
            return PrivilegeError(
                f"the database role lacks a privilege (SQLSTATE {code}): "
                "grant it the runtime role's privileges (docs/deployment.md)"
            )
        if code[:2] in _ROW_CLASSES:
            where = f" on column {column}" if column else ""
            return RowRefusedError(
                f"database refused the data (SQLSTATE {code}){where}", sqlstate=code, column=column
            )
        return StoreError(f"{plain or 'unexpected database error'} (SQLSTATE {code})")
    return StoreError(f"unexpected database error ({type(exc).__name__})")
