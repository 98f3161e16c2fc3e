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


class SecretsUnavailableError(LoginEtlError):
    """Secrets Manager throttled the read, answered 5xx, or could not be reached: the secret may
    be fine. Not a ``ConfigError``: waiting fixes it, so the batch fails whole and is retried."""


class RecordRejectedError(LoginEtlError):
    """A record can never be loaded; it is acknowledged and kept in ``user_logins_rejected``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        #: A stable code from ``constants.Reason``.
        self.reason = reason
        #: Names the field or the problem, never the value (values can be PII).
        self.detail = detail


class RevealError(LoginEtlError):
    """A masked value does not decrypt under any key of the ring."""


class MalformedEventError(LoginEtlError):
    """The Lambda event is not an SQS event, so no record in it can be trusted or acknowledged."""


class StoreError(LoginEtlError):
    """Base class of database errors."""


class TransientStoreError(StoreError):
    """The database was unreachable, timed out or dropped the connection; the batch may be retried."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        #: True when the connection itself is unusable and must be replaced before a retry.
        self.network = network


class RowRefusedError(StoreError):
    """The database refused a statement because of the data in it; retrying cannot help."""

    def __init__(self, message: str, *, sqlstate: str, column: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.column = column


class PrivilegeError(StoreError):
    """The database role lacks a privilege the code needs (SQLSTATE 42501): a deploy error.

    Neither the data (rejecting the row would hide the cause) nor an outage (waiting cannot grant
    it): the batch fails whole, with one log line that names the fix.
    """


class MigrationError(StoreError):
    """The schema could not be created or upgraded."""
