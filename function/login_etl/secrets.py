"""Secrets Manager reads, through Powertools parameters with caching.

Imported lazily and only when a ``*_SECRET_ARN`` is configured: Powertools parameters imports
boto3, which costs about 100 ms of cold start that local and ``DATABASE_URL`` users never need.
"""

from __future__ import annotations

from typing import Any

from .config import ConnParams
from .errors import ConfigError

__all__ = ["get_secret_json", "iam_auth_token", "rds_conn_params"]


def get_secret_json(arn: str, max_age_s: int) -> Any:
    """The secret's JSON value, cached for ``max_age_s``; ``ConfigError`` names the ARN, not the value."""
    from aws_lambda_powertools.utilities import parameters

    try:
        return parameters.get_secret(arn, transform="json", max_age=max_age_s)
    except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError):
        raise ConfigError(f"could not read secret {arn} as JSON") from None


def rds_conn_params(secret: Any) -> ConnParams:
    """Connection parameters from the RDS secret shape: username, password, host, port, dbname."""
    if not isinstance(secret, dict):
        raise ConfigError("the database secret is not a JSON object")
    missing = [k for k in ("username", "password", "host") if not secret.get(k)]
    if missing:
        raise ConfigError(f"the database secret lacks {', '.join(missing)}")
    try:
        port = int(secret.get("port") or 5432)
    except (TypeError, ValueError):
        raise ConfigError("the database secret's port is not a number") from None
    return ConnParams(
        user=str(secret["username"]),
        password=str(secret["password"]),
        host=str(secret["host"]),
        port=port,
        database=str(secret.get("dbname") or "postgres"),
    )


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
