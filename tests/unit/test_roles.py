"""The database roles: the documented grants are the ones ``login-etl migrate`` applies, and a
missing privilege is a deploy error, never a rejected row or a retry-able outage."""

from __future__ import annotations

from pathlib import Path

import pg8000.exceptions
import pytest
from login_etl.dberrors import classify
from login_etl.errors import PrivilegeError, RowRefusedError, TransientStoreError
from login_etl_cli.main import main
from login_etl_cli.roles import check_role_name, create_roles_sql, runtime_grants_sql

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def test_a_missing_privilege_is_a_deploy_error_naming_the_fix_and_no_value() -> None:
    exc = pg8000.exceptions.DatabaseError(
        {"S": "ERROR", "C": "42501", "M": "permission denied for table user_logins_staging 10.0.0.1"}
    )
    err = classify(exc)
    assert isinstance(err, PrivilegeError)
    assert not isinstance(err, RowRefusedError | TransientStoreError)
    assert "10.0.0.1" not in str(err) and "docs/deployment.md" in str(err)


def test_deployment_md_shows_exactly_the_grants_migrate_applies() -> None:
    text = DEPLOYMENT.read_text("utf-8")
    for line in runtime_grants_sql("login_etl_runtime").splitlines():
        assert line in text


def test_print_roles_prints_both_roles_and_the_grants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--print-roles", "--migration-role", "m1", "--runtime-role", "r1"]) == 0
    out = capsys.readouterr().out
    assert create_roles_sql("m1", "r1") in out and runtime_grants_sql("r1") in out
    assert 'CREATE ROLE "m1" LOGIN' in out and 'GRANT USAGE ON SCHEMA %I TO "r1"' in out


@pytest.mark.parametrize("name", ["", "Admin", "x;drop", 'a"b', "1abc", "a" * 64, "a b", "é"])
def test_a_role_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        check_role_name(name)
    with pytest.raises(SystemExit):
        main(["migrate", "--print-roles", "--runtime-role", name])
