"""Configuration, read once from the environment into frozen objects.

This is the only module that reads ``os.environ``. Every error is a ``ConfigError`` with a one-line
message that names the variable, never its value, because values hold passwords and keys. Every
setting is checked here, when it is read, against the range its use allows, so nothing fails later
with a traceback: a bad deploy is one ``configuration error`` line, a bad CLI run is exit 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from . import constants as c
from .errors import ConfigError

__all__ = [
    "ConnParams",
    "DbSettings",
    "PiiSettings",
    "Settings",
    "aws_region",
    "metrics_namespace",
    "on_deployed_lambda",
    "parse_database_url",
    "region_of_arn",
    "service_name",
]

# Plain ASCII decimals only: float() and int() also take "nan", "inf", "1e9", "1_000" and "١٢".
_WHOLE: Final = re.compile(r"[0-9]{1,12}")
_DECIMAL: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
#: The same rule as ``pii``'s key ids, checked here so a bad PII_ACTIVE_KEY_ID is caught on read.
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: PostgreSQL's statement_timeout is an int of milliseconds.
_MAX_STATEMENT_TIMEOUT_MS: Final = 2_147_483_647
#: Lambda's own maximum timeout: waiting longer to connect can never help.
_MAX_CONNECT_TIMEOUT_S: Final = 900
#: A day: caching a secret longer would leave a rotated password or key unused for longer.
_MAX_SECRETS_MAX_AGE_S: Final = 86_400
# arn:<partition>:secretsmanager:<region>:<account>:secret:<name>
_ARN_REGION: Final = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+):")


@dataclass(frozen=True)
class ConnParams:
    """Where and as whom to connect; ``password`` is hidden from ``repr`` so it never reaches a log."""

    user: str
    database: str
    host: str | None = None
    port: int = 5432
    unix_sock: str | None = None
    password: str | None = field(default=None, repr=False)
    #: The URL's own ``sslmode``/``sslrootcert`` (libpq parameters); merged into ``DbSettings``.
    sslmode: str | None = None
    sslrootcert: str | None = None


@dataclass(frozen=True)
class DbSettings:
    """Database settings: a URL for local use, or a Secrets Manager ARN on AWS (exactly one)."""

    url: str | None = field(default=None, repr=False)
    secret_arn: str | None = None
    sslmode: str = "disable"
    sslrootcert: str | None = None
    connect_timeout_s: float = c.DEFAULT_CONNECT_TIMEOUT_S
    statement_timeout_ms: int = c.DEFAULT_STATEMENT_TIMEOUT_MS
    #: Authenticate with a 15-minute IAM token (RDS Proxy with IAMAuth REQUIRED), not the password.
    iam_auth: bool = False

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
            secrets_max_age_s=_whole(
                e,
                c.ENV_SECRETS_MAX_AGE,
                c.DEFAULT_SECRETS_MAX_AGE_S,
                high=_MAX_SECRETS_MAX_AGE_S,
                unit="seconds",
            ),
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


def _seconds(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    value = float(raw) if _DECIMAL.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise ConfigError(f"{name} must be a number of seconds from {low:g} to {high:g}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, *, high: int, unit: str) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    value = int(raw) if _WHOLE.fullmatch(raw) else None
    if value is None or value > high:
        raise ConfigError(f"{name} must be a whole number of {unit} from 0 to {high}")
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
    url_params = parse_database_url(url) if url is not None else None  # fail fast on a bad URL
    env_mode = _get(env, c.ENV_DB_SSLMODE)
    if env_mode is not None and env_mode.lower() not in c.SSL_MODES:
        raise ConfigError(f"{c.ENV_DB_SSLMODE} must be one of {', '.join(c.SSL_MODES)}")
    sslmode = _stricter(env_mode.lower() if env_mode else None, url_params.sslmode if url_params else None)
    rootcert = _get(env, c.ENV_DB_SSLROOTCERT)
    url_rootcert = url_params.sslrootcert if url_params else None
    if rootcert is not None and url_rootcert is not None and rootcert != url_rootcert:
        raise ConfigError(f"{c.ENV_DB_SSLROOTCERT} and {c.ENV_DATABASE_URL}'s sslrootcert disagree; set one")
    rootcert = rootcert or url_rootcert
    if sslmode.startswith("verify-") and rootcert is not None and not os.path.isfile(rootcert):
        raise ConfigError(f"{c.ENV_DB_SSLROOTCERT} (or the URL's sslrootcert) does not name a readable file")
    iam_auth = _flag(env, c.ENV_DB_IAM_AUTH, False)
    if iam_auth and sslmode == "disable":
        raise ConfigError(f"{c.ENV_DB_IAM_AUTH} needs TLS: set {c.ENV_DB_SSLMODE} to require or verify-full")
    return DbSettings(
        url=url,
        secret_arn=arn,
        iam_auth=iam_auth,
        sslmode=sslmode,
        sslrootcert=rootcert,
        connect_timeout_s=_seconds(
            env, c.ENV_DB_CONNECT_TIMEOUT, c.DEFAULT_CONNECT_TIMEOUT_S, low=0.1, high=_MAX_CONNECT_TIMEOUT_S
        ),
        statement_timeout_ms=_whole(
            env,
            c.ENV_DB_STATEMENT_TIMEOUT_MS,
            c.DEFAULT_STATEMENT_TIMEOUT_MS,
            high=_MAX_STATEMENT_TIMEOUT_MS,
            unit="milliseconds",
        ),
    )


def _stricter(a: str | None, b: str | None) -> str:
    """TLS asked for is never dropped: when ``DB_SSLMODE`` and the URL both set a mode, the
    stricter wins (``SSL_MODES`` is ordered from weakest to strictest)."""
    modes = [m for m in (a, b) if m is not None]
    return max(modes, key=c.SSL_MODES.index) if modes else "disable"


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
    active = _get(env, c.ENV_PII_ACTIVE_KEY_ID)
    if spec is not None and on_deployed_lambda(env):
        # A key in plain sight of anyone who can read the function's configuration: only for
        # local runs. On AWS the ring comes from the secret the template names.
        raise ConfigError(
            f"{c.ENV_PII_KEYS} is refused on a deployed Lambda function: use {c.ENV_PII_KEYS_SECRET_ARN}"
        )
    if active is not None and not _KEY_ID.fullmatch(active):
        raise ConfigError(f"{c.ENV_PII_ACTIVE_KEY_ID} must be a key id: 1-32 characters of A-Z a-z 0-9 _ . -")
    if spec is not None:
        from .pii import KeyRing  # the whole key ring is checked now, not at the first batch

        KeyRing.from_spec(spec, active)
    return PiiSettings(keys_spec=spec, active_key_id=active, secret_arn=arn)


def region_of_arn(arn: str) -> str | None:
    """The region an ARN names (``arn:aws:secretsmanager:eu-west-1:...`` -> ``eu-west-1``)."""
    match = _ARN_REGION.match(arn)
    return match.group("region") if match else None


def aws_region(arn: str | None = None) -> str | None:
    """The AWS region to use: the ARN's own, else ``AWS_REGION`` (what Lambda sets and what the
    docs tell users to export), else ``AWS_DEFAULT_REGION`` (the only one botocore reads)."""
    return (
        (region_of_arn(arn) if arn else None)
        or _get(os.environ, c.ENV_AWS_REGION)
        or _get(os.environ, c.ENV_AWS_DEFAULT_REGION)
    )


#: libpq's connection parameters. One we honour is used; any other is refused by name. A name
#: outside this list is refused without being echoed (a mangled URL can put a password there).
_LIBPQ_PARAMS: Final = frozenset(
    [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    ]
)
_HONOURED: Final = ("host", "port", "dbname", "user", "password", "sslmode", "sslrootcert")
_URL_SSL_MODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _query_params(query: str) -> dict[str, str]:
    """The URL's query as libpq reads it: ``name=value`` pairs, percent-decoded ("+" is a plus)."""
    params: dict[str, str] = {}
    for pair in query.split("&") if query else []:
        name, _, value = pair.partition("=")
        name = unquote(name)
        if name not in _LIBPQ_PARAMS:
            raise ConfigError(f"{c.ENV_DATABASE_URL} has a query parameter that is not a libpq parameter")
        if name not in _HONOURED:
            raise ConfigError(
                f"{c.ENV_DATABASE_URL} parameter {name!r} is not supported "
                f"(supported: {', '.join(_HONOURED)}; DB_CONNECT_TIMEOUT for connect_timeout)"
            )
        if name in params:
            raise ConfigError(f"{c.ENV_DATABASE_URL} parameter {name!r} is given twice")
        params[name] = unquote(value)
    return params


def _one_of(name: str, in_url: str | None, in_query: str | None) -> str | None:
    """A value the URL may give in its authority or path and again as a query parameter."""
    if in_url and in_query is not None and in_query != in_url:
        raise ConfigError(f"{c.ENV_DATABASE_URL} gives two different {name}s")
    return in_url or in_query or None


def _port(text: str) -> int:
    if not _WHOLE.fullmatch(text) or not 0 < int(text) < 65536:
        raise ConfigError(f"{c.ENV_DATABASE_URL}'s port must be a number from 1 to 65535")
    return int(text)


def parse_database_url(url: str) -> ConnParams:
    """Parse ``postgresql://user:pass@host:port/db`` or ``postgresql://user@/db?host=/socket/dir``.

    libpq's query parameters ``host``, ``port``, ``dbname``, ``user``, ``password``, ``sslmode``
    and ``sslrootcert`` are honoured; any other is refused, never silently ignored (``?sslmode=
    require`` must not connect in plaintext). ``sslmode=allow`` and ``prefer`` are refused too:
    they fall back to plaintext. Raises ``ConfigError`` without echoing the URL, since it may
    carry a password.
    """
    try:
        parts = urlsplit(url)
        netloc_port = parts.port
    except ValueError:
        raise ConfigError(f"{c.ENV_DATABASE_URL} is not a valid URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{c.ENV_DATABASE_URL} must start with postgresql://")
    if parts.fragment:
        raise ConfigError(
            f"{c.ENV_DATABASE_URL} must not have a #fragment (is a '#' in the password not %23?)"
        )
    query = _query_params(parts.query)
    user = _one_of("user", unquote(parts.username or ""), query.get("user"))
    database = _one_of("database name", unquote(parts.path.lstrip("/")), query.get("dbname"))
    if not user or not database:
        raise ConfigError(f"{c.ENV_DATABASE_URL} must name a user and a database")
    url_password = unquote(parts.password) if parts.password is not None else None
    password = _one_of("password", url_password, query.get("password"))
    if netloc_port == 0:
        raise ConfigError(f"{c.ENV_DATABASE_URL}'s port must be a number from 1 to 65535")
    query_port = _port(query["port"]) if "port" in query else None
    if netloc_port and query_port and netloc_port != query_port:
        raise ConfigError(f"{c.ENV_DATABASE_URL} gives two different ports")
    port = netloc_port or query_port or 5432
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in _URL_SSL_MODES:
        raise ConfigError(f"{c.ENV_DATABASE_URL}'s sslmode must be one of {', '.join(c.SSL_MODES)}")
    if sslmode in ("allow", "prefer"):
        raise ConfigError(
            f"{c.ENV_DATABASE_URL}'s sslmode={sslmode} may fall back to plaintext; "
            f"use one of {', '.join(c.SSL_MODES)}"
        )
    rootcert = query.get("sslrootcert") or None
    host = _one_of("host", parts.hostname, query.get("host"))
    if host and "," in host:
        raise ConfigError(f"{c.ENV_DATABASE_URL} names several hosts; login-etl connects to one")
    if host and host.startswith("/"):
        if parts.hostname:
            raise ConfigError(f"{c.ENV_DATABASE_URL} gives two different hosts")
        sock = f"{host.rstrip('/')}/.s.PGSQL.{port}"
        return ConnParams(user, database, None, port, sock, password, sslmode, rootcert)
    if not host:
        raise ConfigError(f"{c.ENV_DATABASE_URL} must name a host or a ?host=/socket/dir")
    return ConnParams(user, database, host, port, None, password, sslmode, rootcert)


def service_name() -> str:
    """Powertools' service name, defaulted so a bare local run still logs under a stable name."""
    return _get(os.environ, c.ENV_POWERTOOLS_SERVICE_NAME) or c.DEFAULT_SERVICE_NAME


def metrics_namespace() -> str:
    """Powertools' metrics namespace, defaulted because EMF refuses to flush without one."""
    return _get(os.environ, c.ENV_POWERTOOLS_METRICS_NAMESPACE) or c.DEFAULT_METRICS_NAMESPACE
