"""Configuration, read once from the environment into frozen objects.

This is the only module that reads ``os.environ``. Every error is a ``ConfigError`` with a one-line
message that names the variable, never its value, because values hold passwords and keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from . import constants as c
from .errors import ConfigError

__all__ = [
    "ConnParams",
    "DbSettings",
    "PiiSettings",
    "Settings",
    "metrics_namespace",
    "on_deployed_lambda",
    "parse_database_url",
    "service_name",
]


@dataclass(frozen=True)
class ConnParams:
    """Where and as whom to connect; ``password`` is hidden from ``repr`` so it never reaches a log."""

    user: str
    database: str
    host: str | None = None
    port: int = 5432
    unix_sock: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DbSettings:
    """Database settings: a URL for local use, or a Secrets Manager ARN on AWS (exactly one)."""

    url: str | None = field(default=None, repr=False)
    secret_arn: str | None = None
    sslmode: str = "disable"
    sslrootcert: str | None = None
    connect_timeout_s: float = c.DEFAULT_CONNECT_TIMEOUT_S
    statement_timeout_ms: int = c.DEFAULT_STATEMENT_TIMEOUT_MS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DbSettings:
        """Only the database part (``login-etl migrate`` and ``rejects`` need no key)."""
        return _db_settings(os.environ if env is None else env)


@dataclass(frozen=True)
class PiiSettings:
    """Key ring source: ``PII_KEYS`` locally, or a Secrets Manager ARN on AWS (exactly one)."""

    keys_spec: str | None = field(default=None, repr=False)
    active_key_id: str | None = None
    secret_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PiiSettings:
        """Only the key-ring part (``login-etl reveal`` needs no database)."""
        return _pii_settings(os.environ if env is None else env)


@dataclass(frozen=True)
class Settings:
    """Everything the function needs, validated up front so a bad deploy fails at the first batch."""

    db: DbSettings
    pii: PiiSettings
    secrets_max_age_s: int = c.DEFAULT_SECRETS_MAX_AGE_S
    auto_migrate: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); raise ``ConfigError`` on any problem."""
        e = os.environ if env is None else env
        return cls(
            db=_db_settings(e),
            pii=_pii_settings(e),
            secrets_max_age_s=int(_number(e, c.ENV_SECRETS_MAX_AGE, c.DEFAULT_SECRETS_MAX_AGE_S, minimum=0)),
            auto_migrate=_flag(e, c.ENV_AUTO_MIGRATE, True),
        )


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _exactly_one(env: Mapping[str, str], a: str, b: str) -> tuple[str | None, str | None]:
    va, vb = _get(env, a), _get(env, b)
    if va and vb:
        raise ConfigError(f"set only one of {a} and {b}")
    if not va and not vb:
        raise ConfigError(f"{a} (or {b}) is not set")
    return va, vb


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum:g}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false")


def _db_settings(env: Mapping[str, str]) -> DbSettings:
    url, arn = _exactly_one(env, c.ENV_DATABASE_URL, c.ENV_DB_SECRET_ARN)
    if url is not None:
        parse_database_url(url)  # fail fast on a malformed URL
    sslmode = (_get(env, c.ENV_DB_SSLMODE) or "disable").lower()
    if sslmode not in c.SSL_MODES:
        raise ConfigError(f"{c.ENV_DB_SSLMODE} must be one of {', '.join(c.SSL_MODES)}")
    rootcert = _get(env, c.ENV_DB_SSLROOTCERT)
    if sslmode == "verify-full" and rootcert is not None and not os.path.isfile(rootcert):
        raise ConfigError(f"{c.ENV_DB_SSLROOTCERT} does not name a readable file")
    return DbSettings(
        url=url,
        secret_arn=arn,
        sslmode=sslmode,
        sslrootcert=rootcert,
        connect_timeout_s=_number(env, c.ENV_DB_CONNECT_TIMEOUT, c.DEFAULT_CONNECT_TIMEOUT_S, minimum=0.1),
        statement_timeout_ms=int(
            _number(env, c.ENV_DB_STATEMENT_TIMEOUT_MS, c.DEFAULT_STATEMENT_TIMEOUT_MS, minimum=0)
        ),
    )


def on_deployed_lambda(env: Mapping[str, str]) -> bool:
    """True on a real AWS Lambda: Lambda sets the function name, while ``sam local`` also sets
    ``AWS_SAM_LOCAL`` and LocalStack points the SDK at itself (``AWS_ENDPOINT_URL``, or the older
    ``LOCALSTACK_HOSTNAME``). The CLI and the tests set none of the Lambda variables."""
    if not _get(env, c.ENV_AWS_LAMBDA_FUNCTION_NAME):
        return False
    if (_get(env, c.ENV_AWS_SAM_LOCAL) or "").lower() == "true":
        return False
    return not any(_get(env, name) for name in c.LOCALSTACK_MARKERS)


def _pii_settings(env: Mapping[str, str]) -> PiiSettings:
    spec, arn = _exactly_one(env, c.ENV_PII_KEYS, c.ENV_PII_KEYS_SECRET_ARN)
    if spec is not None and on_deployed_lambda(env):
        # A key in plain sight of anyone who can read the function's configuration: only for
        # local runs. On AWS the ring comes from the secret the template names.
        raise ConfigError(
            f"{c.ENV_PII_KEYS} is refused on a deployed Lambda function: use {c.ENV_PII_KEYS_SECRET_ARN}"
        )
    return PiiSettings(keys_spec=spec, active_key_id=_get(env, c.ENV_PII_ACTIVE_KEY_ID), secret_arn=arn)


def parse_database_url(url: str) -> ConnParams:
    """Parse ``postgresql://user:pass@host:port/db`` or ``postgresql://user@/db?host=/socket/dir``.

    Raises ``ConfigError`` without echoing the URL, since it may carry a password.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError:
        raise ConfigError(f"{c.ENV_DATABASE_URL} is not a valid URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{c.ENV_DATABASE_URL} must start with postgresql://")
    database = unquote(parts.path.lstrip("/"))
    user = unquote(parts.username or "")
    if not user or not database:
        raise ConfigError(f"{c.ENV_DATABASE_URL} must name a user and a database")
    password = unquote(parts.password) if parts.password is not None else None
    query_host = parse_qs(parts.query).get("host", [None])[0]
    if query_host and query_host.startswith("/"):
        sock = f"{query_host.rstrip('/')}/.s.PGSQL.{port}"
        return ConnParams(user=user, database=database, port=port, unix_sock=sock, password=password)
    host = parts.hostname or query_host
    if not host:
        raise ConfigError(f"{c.ENV_DATABASE_URL} must name a host or a ?host=/socket/dir")
    return ConnParams(user=user, database=database, host=host, port=port, password=password)


def service_name() -> str:
    """Powertools' service name, defaulted so a bare local run still logs under a stable name."""
    return _get(os.environ, c.ENV_POWERTOOLS_SERVICE_NAME) or c.DEFAULT_SERVICE_NAME


def metrics_namespace() -> str:
    """Powertools' metrics namespace, defaulted because EMF refuses to flush without one."""
    return _get(os.environ, c.ENV_POWERTOOLS_METRICS_NAMESPACE) or c.DEFAULT_METRICS_NAMESPACE
