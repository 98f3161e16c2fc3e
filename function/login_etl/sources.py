"""Where the key ring and the database connection come from, each built from its own settings.

``login-etl reveal`` needs the key ring and no database; ``migrate``, ``rejects`` and ``status``
need the database and (but for replay) no key. Each source therefore takes only its own part of
the configuration, so no caller builds a half-valid ``Settings`` to reach the other.

Secrets are re-read through Powertools' cache, so a rotated secret is picked up within
``secrets_max_age_s`` without a redeploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import constants as c
from .config import ConnParams, DbSettings, PiiSettings, parse_database_url
from .connection import open_connection
from .errors import KeyRingError
from .pii import KeyRing
from .store import PgStore

__all__ = ["DbSource", "KeySource"]


class KeySource:
    """The key ring from ``PII_KEYS`` (fixed) or from its secret (re-read on rotation)."""

    def __init__(
        self,
        pii: PiiSettings,
        *,
        secrets_max_age_s: int = c.DEFAULT_SECRETS_MAX_AGE_S,
        mask_only: bool = False,
    ) -> None:
        self.settings = pii
        self._max_age_s = secrets_max_age_s
        #: The function only masks: its key secret must hold the active key and nothing else.
        self._mask_only = mask_only
        self._static = KeyRing.from_spec(pii.keys_spec, pii.active_key_id) if pii.keys_spec else None
        self._from_secret: tuple[Any, KeyRing] | None = None

    @classmethod
    def from_env(cls) -> KeySource:
        """From ``PII_KEYS`` or ``PII_KEYS_SECRET_ARN`` alone; raises ``ConfigError``."""
        return cls(PiiSettings.from_env())

    def keyring(self) -> KeyRing:
        """The current key ring; raises ``ConfigError``/``KeyRingError`` when it cannot be had."""
        if self._static is not None:
            return self._static
        from .secrets import get_secret_json

        arn = self.settings.secret_arn
        assert arn is not None
        secret = get_secret_json(arn, self._max_age_s, c.ENV_PII_KEYS_SECRET_ARN)
        if self._from_secret is None or self._from_secret[0] != secret:
            if self._mask_only:
                _check_active_key_only(secret)
            self._from_secret = (secret, KeyRing.from_secret(secret, self.settings.active_key_id))
        return self._from_secret[1]


class DbSource:
    """Connections to the configured database: URL or secret, TLS, timeouts, IAM tokens."""

    def __init__(self, db: DbSettings, *, secrets_max_age_s: int = c.DEFAULT_SECRETS_MAX_AGE_S) -> None:
        self.settings = db
        self._max_age_s = secrets_max_age_s

    @classmethod
    def from_env(cls) -> DbSource:
        """From ``DATABASE_URL`` or ``DB_SECRET_ARN`` (and the DB_* options) alone; raises ``ConfigError``."""
        return cls(DbSettings.from_env())

    def conn_params(self) -> ConnParams:
        """Where and as whom to connect, credentials read now (a rotated secret, a fresh token)."""
        db = self.settings
        if db.url is not None:
            params = parse_database_url(db.url)
        else:
            from .secrets import get_secret_json, rds_conn_params

            assert db.secret_arn is not None
            secret = get_secret_json(db.secret_arn, self._max_age_s, c.ENV_DB_SECRET_ARN)
            params = rds_conn_params(secret)
        if db.iam_auth:
            from .secrets import iam_auth_token

            params = replace(params, password=iam_auth_token(params))
        return params

    def connect(self) -> Any:
        return open_connection(self.conn_params(), self.settings)

    def store(self) -> PgStore:
        """A store of its own (one lazily opened connection) on this database."""
        return PgStore(self.connect)


def _check_active_key_only(secret: object) -> None:
    """Refuse a function key secret that holds more than one key.

    The function never decrypts, so a retired key in its secret is exposure without use: whoever
    can read the function's secret (its role, or a broad admin) could reveal every old value.
    Retired keys live in the operator key secret that ``login-etl reveal`` reads.
    """
    keys = secret.get("keys") if isinstance(secret, Mapping) else None
    if isinstance(keys, Mapping) and len(keys) > 1:
        raise KeyRingError(
            "the function's PII key secret must hold only the active key; keep retired keys in "
            "the operator key secret (docs/security.md, key rotation)"
        )
