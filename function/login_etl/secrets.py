"""Secrets Manager reads, through Powertools parameters with caching.

Imported lazily and only when a ``*_SECRET_ARN`` is configured: Powertools parameters imports
boto3, a large share of the cold start (``make bench``) that local and ``DATABASE_URL`` users
never need.
"""

from __future__ import annotations

from typing import Any

from .config import ConnParams, aws_region
from .errors import ConfigError, SecretsUnavailableError

__all__ = ["get_secret_json", "iam_auth_token", "rds_conn_params"]

_NO_REGION = "no AWS region (set AWS_REGION, or give a full ARN)"
#: What the common Secrets Manager error codes mean, in plain words.
_PLAIN: dict[str, str] = {
    "ResourceNotFoundException": "not found",
    "AccessDeniedException": "access denied",
    "AccessDenied": "access denied",
    "DecryptionFailure": "its KMS key cannot decrypt it",
    "InvalidRequestException": "not readable now (deleted, or pending deletion?)",
    "UnrecognizedClientException": "the AWS credentials are not valid",
    "ExpiredTokenException": "the AWS credentials have expired",
}
#: Error codes that say Secrets Manager is busy or failing, not that the secret is wrong. Any
#: 5xx answer counts too, named or not (a proxy's bare 502).
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def _provider(arn: str) -> Any:
    """A Powertools secrets provider for the ARN's own region (then ``AWS_REGION``, then
    ``AWS_DEFAULT_REGION``): botocore alone reads only the last, so the CLI's ``migrate`` and
    ``reveal`` could not find a region. Kept in Powertools' provider table, so its cache and
    ``clear_caches`` work as for ``get_secret``."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
    from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider
    from botocore.config import Config

    region = aws_region(arn)
    slot = f"secrets:{region}"
    if slot not in DEFAULT_PROVIDERS:
        config = Config(region_name=region) if region else None
        DEFAULT_PROVIDERS[slot] = SecretsProvider(boto_config=config)
    return DEFAULT_PROVIDERS[slot]


def _why(exc: BaseException) -> tuple[str, bool]:
    """Why a read failed, from the botocore error Powertools wrapped: plain words, then the AWS
    error code or the exception class; and whether waiting can fix it (throttling, a 5xx, the
    network). Never the secret's value, and never botocore's own text (it can quote a request)."""
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        SSLError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    cause = exc.__context__
    if isinstance(cause, ClientError):
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(cause.response.get("Error", {}).get("Code") or f"HTTP {status}")
        if code in _TRANSIENT_CODES or status >= 500:
            return f"Secrets Manager is throttling or failing ({code})", True
        return f"{_PLAIN.get(code, 'AWS refused the request')} ({code})", False
    if isinstance(cause, NoRegionError):
        return _NO_REGION, False
    if isinstance(cause, NoCredentialsError):
        return "no AWS credentials", False
    # A TLS failure is a CA bundle or proxy setting, which waiting does not fix.
    if isinstance(cause, BotoConnectionError | HTTPClientError) and not isinstance(cause, SSLError):
        return f"Secrets Manager could not be reached ({type(cause).__name__})", True
    why = f"the request failed ({type(cause).__name__})" if cause is not None else "the request failed"
    return why, False


def get_secret_json(arn: str, max_age_s: int, variable: str) -> Any:
    """The secret's JSON value, cached for ``max_age_s``. Errors name ``variable`` (the setting
    that holds ``arn``) and the ARN, never the value: ``SecretsUnavailableError`` when waiting can
    fix it, ``ConfigError`` when the secret, the role or the settings are wrong."""
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        TransformParameterError,
    )
    from botocore.exceptions import NoRegionError

    try:
        provider = _provider(arn)
    except NoRegionError:
        raise ConfigError(f"could not read secret {variable} ({arn}): {_NO_REGION}") from None
    try:
        return provider.get(arn, transform="json", max_age=max_age_s)
    except GetParameterError as exc:
        why, transient = _why(exc)
        if transient:
            raise SecretsUnavailableError(
                f"could not read secret {variable} ({arn}) now: {why}; transient, worth a retry"
            ) from None
        raise ConfigError(f"could not read secret {variable} ({arn}): {why}") from None
    except TransformParameterError:
        raise ConfigError(f"secret {variable} ({arn}) is not JSON") from None


def rds_conn_params(secret: Any) -> ConnParams:
    """Connection parameters from the RDS secret shape: username, password, host, port, dbname."""
    if not isinstance(secret, dict):
        raise ConfigError("the database secret is not a JSON object")
    missing = [k for k in ("username", "password", "host") if not secret.get(k)]
    if missing:
        raise ConfigError(f"the database secret lacks {', '.join(missing)}")
    return ConnParams(
        user=str(secret["username"]),
        password=str(secret["password"]),
        host=str(secret["host"]),
        port=_port(secret.get("port")),
        database=str(secret.get("dbname") or "postgres"),
    )


def _port(raw: object) -> int:
    """The secret's port, checked when read: a whole number 1-65535 (JSON number or digits);
    absent, null or empty means 5432. ``int()`` alone took ``true`` as 1 and 5432.9 as 5432, and
    let 99999 fail later inside the socket call as an "unexpected database error"."""
    if raw is None or raw == "":
        return 5432
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 5:
        raw = int(raw)
    if type(raw) is int and 0 < raw < 65536:
        return raw
    raise ConfigError("the database secret's port is not a number from 1 to 65535")


def iam_auth_token(params: ConnParams) -> str:
    """A 15-minute IAM authentication token for ``params`` (RDS Proxy with IAMAuth REQUIRED).

    Signed locally with the function role's credentials (no network call); the proxy checks it
    against ``rds-db:connect`` for this user. It stands in for the password, so it is never logged.
    """
    import boto3
    from botocore.exceptions import BotoCoreError

    if params.host is None:
        raise ConfigError("IAM database authentication needs a TCP host, not a unix socket")
    try:
        token: str = boto3.client("rds").generate_db_auth_token(
            DBHostname=params.host, Port=params.port, DBUsername=params.user
        )
    except BotoCoreError as exc:
        raise ConfigError(f"could not sign an IAM database token ({type(exc).__name__})") from None
    return token
