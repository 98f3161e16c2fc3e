"""The package's small error hierarchy.

Failure classes are decided by type, never by message text: ``TransientStoreError`` means "retry
the batch later", ``RowRefusedError`` means "this row can never be stored", and anything else is a
bug that should surface. No message here ever carries a raw ip, device_id, key or password.
"""

from __future__ import annotations


class LoginEtlError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(LoginEtlError):
    """The environment does not describe a usable configuration."""


class KeyRingError(ConfigError):
    """PII keys are missing, malformed, or of a size AES-SIV cannot use."""


class RevealError(LoginEtlError):
    """A masked value does not decrypt under any key of the ring."""


class MalformedEventError(LoginEtlError):
    """The Lambda event is not an SQS event, so no record in it can be trusted or acknowledged."""


class StoreError(LoginEtlError):
    """Base class of database errors."""


class TransientStoreError(StoreError):
    """The database was unreachable, timed out or dropped the connection; the batch may be retried."""


class RowRefusedError(StoreError):
    """The database refused a statement because of the data in it; retrying cannot help."""


class MigrationError(StoreError):
    """The schema could not be created or upgraded."""
