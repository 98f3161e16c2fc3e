"""Names other code relies on: environment variables, limits, and reject reasons.

Every environment variable the package reads is named here and read only by ``config``, so the
template, the docs and the tests can check one list.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# --- environment variables -------------------------------------------------------------------
ENV_DATABASE_URL: Final = "DATABASE_URL"
ENV_DB_SECRET_ARN: Final = "DB_SECRET_ARN"
ENV_DB_SSLMODE: Final = "DB_SSLMODE"
ENV_DB_SSLROOTCERT: Final = "DB_SSLROOTCERT"
ENV_DB_CONNECT_TIMEOUT: Final = "DB_CONNECT_TIMEOUT"
ENV_DB_STATEMENT_TIMEOUT_MS: Final = "DB_STATEMENT_TIMEOUT_MS"
ENV_DB_IAM_AUTH: Final = "DB_IAM_AUTH"
ENV_PII_KEYS: Final = "PII_KEYS"
ENV_PII_ACTIVE_KEY_ID: Final = "PII_ACTIVE_KEY_ID"
ENV_PII_KEYS_SECRET_ARN: Final = "PII_KEYS_SECRET_ARN"
ENV_SECRETS_MAX_AGE: Final = "SECRETS_MAX_AGE"
ENV_AUTO_MIGRATE: Final = "AUTO_MIGRATE"

#: Every variable ``config`` reads; the template test checks each is set by template.yaml.
CONFIG_ENV_VARS: Final = (
    ENV_DATABASE_URL,
    ENV_DB_SECRET_ARN,
    ENV_DB_SSLMODE,
    ENV_DB_SSLROOTCERT,
    ENV_DB_CONNECT_TIMEOUT,
    ENV_DB_STATEMENT_TIMEOUT_MS,
    ENV_DB_IAM_AUTH,
    ENV_PII_KEYS,
    ENV_PII_ACTIVE_KEY_ID,
    ENV_PII_KEYS_SECRET_ARN,
    ENV_SECRETS_MAX_AGE,
    ENV_AUTO_MIGRATE,
)

#: Weakest to strictest: when DB_SSLMODE and DATABASE_URL's sslmode differ, the later one wins.
SSL_MODES: Final = ("disable", "require", "verify-ca", "verify-full")

# Set by the platform, never by the template: how the code tells a real Lambda from a local one.
ENV_AWS_LAMBDA_FUNCTION_NAME: Final = "AWS_LAMBDA_FUNCTION_NAME"
ENV_AWS_SAM_LOCAL: Final = "AWS_SAM_LOCAL"
LOCALSTACK_MARKERS: Final = ("AWS_ENDPOINT_URL", "LOCALSTACK_HOSTNAME")

# --- defaults --------------------------------------------------------------------------------
DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_STATEMENT_TIMEOUT_MS: Final = 20_000
DEFAULT_SECRETS_MAX_AGE_S: Final = 300

# --- input limits (DESIGN.md, "Input") --------------------------------------------------------
MAX_USER_ID_CHARS: Final = 128
MAX_DEVICE_TYPE_CHARS: Final = 32
MAX_LOCALE_CHARS: Final = 32
MAX_DEVICE_ID_BYTES: Final = 128
MAX_IP_BYTES: Final = 45
MAX_MESSAGE_ID_CHARS: Final = 128
#: 9999-12-31T23:59:59.999Z in epoch milliseconds: the last instant Python's datetime can hold.
MAX_SENT_TIMESTAMP_MS: Final = 253_402_300_799_999

# --- PII keys ---------------------------------------------------------------------------------
PII_KEY_SIZES: Final = (32, 64)
AD_IP: Final = b"ip"
AD_DEVICE_ID: Final = b"device_id"
#: Associated data for rejected bodies, so a body ciphertext can never pass for a masked field.
AD_BODY: Final = b"body"

# --- AWS (read by config; the function's own settings are CONFIG_ENV_VARS above) ---------------
ENV_AWS_REGION: Final = "AWS_REGION"
ENV_AWS_DEFAULT_REGION: Final = "AWS_DEFAULT_REGION"

# --- observability ----------------------------------------------------------------------------
ENV_POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
ENV_POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
DEFAULT_SERVICE_NAME: Final = "login-etl"
DEFAULT_METRICS_NAMESPACE: Final = "LoginEtl"


class Reason(StrEnum):
    """Why a record was rejected: a closed set of stable codes stored in user_logins_rejected."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_ENVELOPE = "bad_envelope"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    TOO_LONG = "too_long"
    BAD_IP = "bad_ip"
    BAD_APP_VERSION = "bad_app_version"
    #: An SQS attribute the record carries is unusable (a SentTimestamp that is not a date).
    BAD_ATTRIBUTE = "bad_attribute"
    DB_REJECTED = "db_rejected"
    #: Handling this one record raised something unforeseen (a bug): it is kept, not the batch failed.
    UNPROCESSABLE = "unprocessable"
