"""``login-etl migrate``: its options, help, examples and run (the roles' SQL is ``roles``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import argtypes
from ..roles import DEFAULT_MIGRATION_ROLE, DEFAULT_RUNTIME_ROLE
from ._common import EXIT_OK, add_command

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "migrate",
        "create or upgrade the database schema (idempotent); create or print the database roles",
        "Create the tables, or upgrade an exercise-style user_logins that has no message_id. Safe to\n"
        "run any time, even while functions run: it holds a Postgres advisory lock. Needs\n"
        "DATABASE_URL (or DB_SECRET_ARN); no PII key.\n\n"
        "Roles (docs/deployment.md): --print-roles prints the SQL for a migration role and a\n"
        "least-privilege runtime role; --create-roles runs it as the (admin) DATABASE_URL user and\n"
        "stops. Then run `login-etl migrate --runtime-role NAME` as the migration role: it migrates\n"
        "and grants NAME exactly what the function needs.",
        "examples:\n"
        "  DATABASE_URL=postgresql://me:secret@localhost:5432/logins login-etl migrate\n"
        '  login-etl migrate --print-roles | psql "$ADMIN_URL"\n'
        "  DATABASE_URL=$MIGRATOR_URL login-etl migrate --runtime-role login_etl_runtime",
        func=run,
    )
    roles = parser.add_mutually_exclusive_group()
    roles.add_argument("--print-roles", action="store_true", help="print the roles' SQL and exit")
    roles.add_argument("--create-roles", action="store_true", help="create the roles (as an admin) and exit")
    parser.add_argument(
        "--migration-role",
        type=argtypes.role_name,
        default=DEFAULT_MIGRATION_ROLE,
        metavar="NAME",
        help=f"the role that owns the schema (default {DEFAULT_MIGRATION_ROLE})",
    )
    parser.add_argument(
        "--runtime-role",
        type=argtypes.role_name,
        default=None,
        metavar="NAME",
        help=f"grant NAME the runtime privileges after migrating (roles default {DEFAULT_RUNTIME_ROLE})",
    )


def run(args: argparse.Namespace) -> int:
    from login_etl.sources import DbSource

    from ..operator import create_roles, migrate
    from ..roles import create_roles_sql, runtime_grants_sql

    runtime_role = args.runtime_role or DEFAULT_RUNTIME_ROLE
    if args.print_roles:
        sys.stdout.write("-- 1. As an administrator, in the target database:\n")
        sys.stdout.write(create_roles_sql(args.migration_role, runtime_role))
        sys.stdout.write(
            f"-- 2. As {args.migration_role}: `login-etl migrate --runtime-role {runtime_role}`, which\n"
            "--    creates the schema, then runs:\n"
        )
        sys.stdout.write(runtime_grants_sql(runtime_role))
        return EXIT_OK
    if args.create_roles:
        create_roles(DbSource.from_env().store(), args.migration_role, runtime_role)
        sys.stderr.write(
            f"migrate: roles {args.migration_role} and {runtime_role} exist; set their passwords (or "
            f"GRANT rds_iam), then run `login-etl migrate --runtime-role {runtime_role}` as "
            f"{args.migration_role}\n"
        )
        return EXIT_OK
    report = migrate(DbSource.from_env(), runtime_role=args.runtime_role)
    granted = f"; {args.runtime_role} has the runtime grants" if args.runtime_role else ""
    sys.stderr.write(f"migrate: {report.describe()}{granted}\n")
    return EXIT_OK
