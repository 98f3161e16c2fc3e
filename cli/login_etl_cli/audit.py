"""The audit record of every decryption an operator runs (``reveal``, ``rejects --replay``).

The record is written, and flushed, BEFORE any plaintext leaves the process: a reader that
closes the pipe after the first value (``| head -1``), a crash or a kill cannot leave a revealed
value without its record. If the record cannot be written, nothing is decrypted.

- who: the STS caller identity (``GetCallerIdentity``: a name AWS vouches for) when boto3 finds
  credentials; else the OS account of the process's effective uid, read from the password
  database (never ``$USER``/``$LOGNAME``, which the caller sets), marked ``"who_source":
  "os-user"`` because nothing verifies it.
- what: the action, how many values, and the key ids they name; never a value.
- when: UTC, to the millisecond.

The sink is CloudWatch Logs when ``LOGIN_ETL_AUDIT_LOG_GROUP`` names a group (the stack's
``AuditLogGroup``: operators may append to it but not edit it), else one JSON line on stderr.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from .errors import CliError

__all__ = ["ENV_AUDIT_LOG_GROUP", "AuditError", "Auditor", "key_ids_of"]

ENV_AUDIT_LOG_GROUP: Final = "LOGIN_ETL_AUDIT_LOG_GROUP"
# The key-id grammar of login_etl.pii; anything else in front of ":" is reported as "?".
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class AuditError(CliError):
    """The audit record could not be written, so nothing was decrypted."""


#: ``who`` and ``who_source`` (``sts`` or ``os-user``), plus ``sts_error`` when STS failed.
Identity = dict[str, str]


def _sts_identity() -> Identity | None:
    """The STS caller ARN when credentials are present; None when there are none."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session()
    if session.get_credentials() is None:
        return None
    try:
        sts = session.client(
            "sts",
            region_name=session.region_name or "us-east-1",
            config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1}),
        )
        arn = sts.get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError) as exc:
        found = _os_identity()
        found["sts_error"] = type(exc).__name__
        return found
    return {"who": str(arn), "who_source": "sts"}


def _os_identity() -> Identity:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = f"uid {uid}"
    return {"who": f"{name}@{socket.gethostname()}", "who_source": "os-user"}


def key_ids_of(masked: Iterable[str]) -> list[str]:
    """The distinct key ids the values name (the part before ``:``), sorted; never a value."""
    ids = set()
    for value in masked:
        key_id, sep, _ = value.strip().partition(":")
        ids.add(key_id if sep and _KEY_ID.fullmatch(key_id) else "?")
    return sorted(ids)


class Auditor:
    """Writes audit records to CloudWatch Logs (when configured) or ``err``; who is asked once."""

    def __init__(self, err: TextIO, *, env: dict[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        self._err = err
        self._group = environ.get(ENV_AUDIT_LOG_GROUP, "").strip() or None
        self._identity: Identity | None = None
        self._logs: Any = None
        self._stream: str | None = None

    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = _sts_identity() or _os_identity()
        return self._identity

    def record(self, action: str, masked: Iterable[str], **extra: Any) -> dict[str, Any]:
        """Write one record for ``action`` over ``masked`` values; raise ``AuditError`` if it cannot."""
        values = list(masked)
        entry: dict[str, Any] = {
            "audit": action,
            **self.identity(),
            "when": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "count": len(values),
            "key_ids": key_ids_of(values),
            "pid": os.getpid(),
            **extra,
        }
        line = json.dumps(entry, sort_keys=True)
        if self._group is not None:
            self._to_cloudwatch(line)
            entry["sink"] = f"cloudwatch:{self._group}"
        else:
            entry["sink"] = "stderr"
        # Always on stderr too, so the operator sees what was recorded in their name.
        self._err.write(f"audit: {line}\n")
        self._err.flush()
        return entry

    def _to_cloudwatch(self, line: str) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._logs is None:
                self._logs = boto3.client("logs")
                stream = f"{datetime.now(UTC):%Y/%m/%d}/{uuid.uuid4().hex}"
                self._logs.create_log_stream(logGroupName=self._group, logStreamName=stream)
                self._stream = stream
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            self._logs.put_log_events(
                logGroupName=self._group,
                logStreamName=self._stream,
                logEvents=[{"timestamp": now_ms, "message": line}],
            )
        except (BotoCoreError, ClientError) as exc:
            raise AuditError(
                f"cannot write the audit record to CloudWatch Logs group {self._group} "
                f"({type(exc).__name__}); nothing more is decrypted",
                exit_code=1,
            ) from None
