"""Secrets Manager reads, through Powertools parameters with caching.

Imported lazily and only when a ``*_SECRET_ARN`` is configured: Powertools parameters imports
boto3, which costs about 100 ms of cold start that local and ``DATABASE_URL`` users never need.
"""

from __future__ import annotations

from typing import Any

from .config import ConnParams
from .errors import ConfigError

__all__ = ["get_secret_json", "rds_conn_params"]


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
