"""Configuration from the environment: clear one-line errors that never echo a secret."""

from __future__ import annotations

import pytest
from login_etl.config import ConnParams, Settings, parse_database_url
from login_etl.errors import ConfigError

KEYS = "k1:" + "A" * 86  # 64 bytes of base64 (shape only; this test never masks)


def env(**extra: str) -> dict[str, str]:
    return {"DATABASE_URL": "postgresql://app:s3cret@db.internal:6543/logins", "PII_KEYS": KEYS, **extra}


def test_tcp_url_parses() -> None:
    assert parse_database_url("postgresql://app:p%40ss@db.internal:6543/logins") == ConnParams(
        user="app", password="p@ss", host="db.internal", port=6543, database="logins"
    )


def test_unix_socket_url_parses() -> None:
    params = parse_database_url("postgresql://postgres@/postgres?host=/tmp/pgdir")
    assert params.unix_sock == "/tmp/pgdir/.s.PGSQL.5432" and params.host is None


def test_password_is_not_in_repr() -> None:
    settings = Settings.from_env(env())
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(parse_database_url(env()["DATABASE_URL"]))
    assert KEYS not in repr(settings)


def test_defaults() -> None:
    s = Settings.from_env(env())
    assert (s.db.sslmode, s.db.statement_timeout_ms, s.auto_migrate) == ("disable", 20_000, True)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"PII_KEYS": KEYS}, "DATABASE_URL (or DB_SECRET_ARN) is not set"),
        (env(DB_SECRET_ARN="arn:aws:secretsmanager:x"), "set only one of DATABASE_URL and DB_SECRET_ARN"),
        ({"DATABASE_URL": "postgresql://a:b@h/d"}, "PII_KEYS (or PII_KEYS_SECRET_ARN) is not set"),
        (env(DATABASE_URL="mysql://app:s3cret@h/d"), "DATABASE_URL must start with postgresql://"),
        (env(DATABASE_URL="postgresql://app:s3cret@h:notaport/d"), "DATABASE_URL is not a valid URL"),
        (env(DATABASE_URL="postgresql://h/d"), "DATABASE_URL must name a user and a database"),
        (env(DB_SSLMODE="prefer"), "DB_SSLMODE must be one of disable, require, verify-ca, verify-full"),
        (env(DB_CONNECT_TIMEOUT="soon"), "DB_CONNECT_TIMEOUT must be a number of seconds from 0.1 to 900"),
        (
            env(DB_STATEMENT_TIMEOUT_MS="-1"),
            "DB_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds from 0 to 2147483647",
        ),
        (env(AUTO_MIGRATE="maybe"), "AUTO_MIGRATE must be true or false"),
        (
            env(DB_SSLMODE="verify-full", DB_SSLROOTCERT="/nonexistent/ca.pem"),
            "DB_SSLROOTCERT (or the URL's sslrootcert) does not name a readable file",
        ),
    ],
)
def test_bad_configuration_is_one_clear_line_without_secrets(
    environment: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environment)
    assert str(info.value) == message
    assert "s3cret" not in str(info.value)
