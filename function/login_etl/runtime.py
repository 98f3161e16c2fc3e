"""What one Lambda container builds once and reuses: the key source, the store, the schema check.

Construction is cheap and touches no network; the connection opens lazily at the first batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import Settings
from .sources import DbSource, KeySource

if TYPE_CHECKING:
    from .batch import BatchOutcome

__all__ = ["Runtime"]


class Runtime:
    """Per-container state, from the whole configuration (the handler needs both halves)."""

    def __init__(self, settings: Settings, *, mask_only: bool = False) -> None:
        self.settings = settings
        self.keys = KeySource(settings.pii, secrets_max_age_s=settings.secrets_max_age_s, mask_only=mask_only)
        self.store = DbSource(settings.db, secrets_max_age_s=settings.secrets_max_age_s).store()
        self._schema_ready = not settings.auto_migrate
        #: Called with each batch's outcome after it is published: a seam for observers (the
        #: benchmark reads each batch's transform/insert split); empty on Lambda.
        self.on_outcome: list[Callable[[BatchOutcome], None]] = []

    def ensure_schema(self) -> None:
        """Run the idempotent migration once per container when ``AUTO_MIGRATE`` is on."""
        if not self._schema_ready:
            self.store.migrate()
            self._schema_ready = True
