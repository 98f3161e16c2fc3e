"""The two database roles: a migration role that owns the schema, and a least-privilege runtime role.

The runtime grants are exactly what ``login_etl.store`` sends on the batch path, and an
integration test runs every batch path (fast COPY, the ON CONFLICT fallback after a lost race,
the bisection that isolates refused rows) as a role holding only these:

- ``user_logins``: SELECT (the lookup of stored message ids), INSERT (COPY, and the fallback's
  ``INSERT ... ON CONFLICT DO NOTHING``, which needs no UPDATE);
- ``user_logins_rejected``: INSERT, and SELECT on the one column ``message_id``: ``ON CONFLICT
  (message_id)`` reads its arbiter column, so PostgreSQL requires SELECT on it (found by running
  the batch as this role). The bodies stay unreadable to the function;
- ``user_logins_staging``: INSERT (COPY), DELETE and SELECT (``DELETE ... RETURNING *`` reads the
  rows it deletes).

No sequence: no table has a serial column. The runtime role cannot create, alter, drop or read
the rejected bodies; ``login-etl rejects`` and ``migrate`` run as the migration role.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFAULT_MIGRATION_ROLE",
    "DEFAULT_RUNTIME_ROLE",
    "RUNTIME_GRANTS",
    "check_role_name",
    "create_roles_sql",
    "runtime_grants_sql",
]

DEFAULT_MIGRATION_ROLE: Final = "login_etl_migrate"
DEFAULT_RUNTIME_ROLE: Final = "login_etl_runtime"

#: Table -> privileges of the runtime role; nothing else is granted to it.
RUNTIME_GRANTS: Final[dict[str, tuple[str, ...]]] = {
    "user_logins": ("SELECT", "INSERT"),
    "user_logins_rejected": ("INSERT", "SELECT (message_id)"),
    "user_logins_staging": ("SELECT", "INSERT", "DELETE"),
}

# Lower-case identifiers only: they need no quoting rules beyond double quotes, and a name that
# could carry SQL never reaches a statement.
_ROLE_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_role_name(name: str) -> str:
    """``name`` if it is a plain lower-case identifier, else ``ValueError``."""
    if not _ROLE_NAME.fullmatch(name):
        raise ValueError(
            f"role name {name!r} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit"
        )
    return name


def _create_role(name: str) -> str:
    # LOGIN without a password: set one with ALTER ROLE ... PASSWORD, or GRANT rds_iam for IAM auth.
    return (
        f"DO $$ BEGIN\n"
        f"    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN\n"
        f'        CREATE ROLE "{name}" LOGIN;\n'
        f"    END IF;\n"
        f"END $$;\n"
        f"DO $$ BEGIN\n"
        f"    EXECUTE format('GRANT CONNECT ON DATABASE %I TO \"{name}\"', current_database());\n"
        f"END $$;\n"
    )


def create_roles_sql(migration_role: str, runtime_role: str) -> str:
    """What an administrator runs once, in the target database: both roles and their schema rights.

    Idempotent. The tables do not exist yet: the migration role creates (and so owns) them, then
    grants the runtime role its table privileges (``runtime_grants_sql``).
    """
    m, r = check_role_name(migration_role), check_role_name(runtime_role)
    return (
        _create_role(m)
        + _create_role(r)
        + "DO $$ BEGIN\n"
        + f"    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO \"{m}\"', current_schema());\n"
        + f"    EXECUTE format('GRANT USAGE ON SCHEMA %I TO \"{r}\"', current_schema());\n"
        + "END $$;\n"
    )


def runtime_grants_sql(runtime_role: str) -> str:
    """What the table owner (the migration role) runs after the migration: exactly the runtime grants.

    Everything is revoked first, so a role that had more (an old, wider grant) ends with exactly
    these. Sent as one simple-query string, so it applies whole or not at all.
    """
    r = check_role_name(runtime_role)
    tables = ", ".join(RUNTIME_GRANTS)
    lines = [f'REVOKE ALL ON {tables} FROM "{r}";']
    lines += [f'GRANT {", ".join(privs)} ON {table} TO "{r}";' for table, privs in RUNTIME_GRANTS.items()]
    return "\n".join(lines) + "\n"
