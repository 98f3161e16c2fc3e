"""What one Lambda container builds once and reuses: settings, the key ring, the store.

Construction is cheap and touches no network; the connection opens lazily at the first batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .config import ConnParams, Settings, parse_database_url
from .connection import open_connection
from .errors import KeyRingError
from .pii import KeyRing
from .store import PgStore

__all__ = ["Runtime"]


class Runtime:
    """Per-container state. Key and credential secrets are re-read through Powertools' cache, so a
    rotated secret is picked up within ``SECRETS_MAX_AGE`` seconds without a redeploy."""

    def __init__(self, settings: Settings, *, mask_only: bool = False) -> None:
        self.settings = settings
        #: The function only masks: its key secret must hold the active key and nothing else.
        self._mask_only = mask_only
        pii = settings.pii
        self._static_ring = KeyRing.from_spec(pii.keys_spec, pii.active_key_id) if pii.keys_spec else None
        self._secret_ring: tuple[Any, KeyRing] | None = None
        self.store = PgStore(self._connect)
        self._schema_ready = not settings.auto_migrate

    def keyring(self) -> KeyRing:
        """The current key ring; raises ``ConfigError``/``KeyRingError`` when it cannot be had."""
        if self._static_ring is not None:
            return self._static_ring
        from .secrets import get_secret_json

        arn = self.settings.pii.secret_arn
        assert arn is not None
        secret = get_secret_json(arn, self.settings.secrets_max_age_s)
        if self._secret_ring is None or self._secret_ring[0] != secret:
            if self._mask_only:
                _check_active_key_only(secret)
            self._secret_ring = (
                secret,
                KeyRing.from_secret(secret, self.settings.pii.active_key_id),
            )
        return self._secret_ring[1]

    def _conn_params(self) -> ConnParams:
        db = self.settings.db
        if db.url is not None:
            params = parse_database_url(db.url)
        else:
            from .secrets import get_secret_json, rds_conn_params

            assert db.secret_arn is not None
            params = rds_conn_params(get_secret_json(db.secret_arn, self.settings.secrets_max_age_s))
        if db.iam_auth:
            from .secrets import iam_auth_token

            params = replace(params, password=iam_auth_token(params))
        return params

    def _connect(self) -> Any:
        return open_connection(self._conn_params(), self.settings.db)

    def ensure_schema(self) -> None:
        """Run the idempotent migration once per container when ``AUTO_MIGRATE`` is on."""
        if not self._schema_ready:
            self.store.migrate()
            self._schema_ready = True


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
