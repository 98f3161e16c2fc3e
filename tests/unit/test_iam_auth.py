"""IAM database authentication (RDS Proxy with IAMAuth REQUIRED): a signed token replaces the
password, only over TLS, and the template switches it on with the proxy's setting."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from login_etl.config import DbSettings
from login_etl.errors import ConfigError
from login_etl.sources import DbSource
from unit.test_template import TEMPLATE, parse, sam_transform


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "not-a-real-secret"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
    ):
        monkeypatch.setenv(name, value)


def test_the_password_is_replaced_by_a_token_signed_for_that_host_port_and_user(aws_env: None) -> None:
    url = "postgresql://login_etl_runtime:static-password@proxy.example.internal:5432/logins"
    db = DbSettings(url=url, sslmode="verify-full", iam_auth=True)
    params = DbSource(db).conn_params()

    assert params.password is not None and "static-password" not in params.password
    token = urlsplit("https://" + params.password)
    assert token.netloc == "proxy.example.internal:5432"
    query = parse_qs(token.query)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["login_etl_runtime"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "rds-db"]


def test_without_iam_auth_the_password_is_the_secrets() -> None:
    url = "postgresql://u:static-password@db.example.internal:5432/logins"
    params = DbSource(DbSettings(url=url)).conn_params()
    assert params.password == "static-password"


def test_iam_auth_without_tls_is_a_config_error() -> None:
    env = {"DATABASE_URL": "postgresql://u@db/x", "DB_IAM_AUTH": "true", "DB_SSLMODE": "disable"}
    with pytest.raises(ConfigError, match="DB_IAM_AUTH needs TLS"):
        DbSettings.from_env(env)
    assert DbSettings.from_env(env | {"DB_SSLMODE": "require"}).iam_auth is True


def test_the_template_turns_it_on_with_the_proxys_iam_auth() -> None:
    cfn = sam_transform(parse(TEMPLATE.read_text()))
    env = cfn["Resources"]["LoginEtlFunction"]["Properties"]["Environment"]["Variables"]
    assert env["DB_IAM_AUTH"] == {"Fn::If": ["ProxyIamAuth", "true", "false"]}
