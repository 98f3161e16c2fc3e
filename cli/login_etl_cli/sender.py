"""Send message bodies to a queue with SendMessageBatch: 10 entries per call, and no more bytes
per message and per call than the queue's ``MaximumMessageSize`` (read once per send).

Bodies are sent verbatim: nothing is re-serialised, so what the handler sees is byte for byte
what the file or the generator held. For a FIFO queue every entry gets a MessageGroupId (the
body's ``user_id``, so one user's logins stay in order) and a unique MessageDeduplicationId, so
an identical body sent twice is two messages, exactly as on a standard queue.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .errors import CliError, printable

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

    #: Message attributes as SendMessageBatch takes them (name -> DataType and value).
    Attributes = Mapping[str, MessageAttributeValueTypeDef]
else:
    Attributes = Mapping[str, Mapping[str, Any]]

__all__ = [
    "FALLBACK_GROUP",
    "FALLBACK_MESSAGE_BYTES",
    "MAX_BATCH_ENTRIES",
    "MESSAGE_GROUP_ID",
    "SendFailure",
    "SendResult",
    "group_of",
    "message_limit",
    "read_ndjson",
    "send_bodies",
]

MAX_BATCH_ENTRIES: Final = 10
#: SQS's ceiling for one message and for the sum of one SendMessageBatch call (since August 2025;
#: a queue's ``MaximumMessageSize`` may be lower, 1 KiB at least).
MAX_SQS_BYTES: Final = 1024 * 1024
#: The limit used when the queue's ``MaximumMessageSize`` cannot be read (a role allowed only
#: sqs:SendMessage): the old default, which every queue takes.
FALLBACK_MESSAGE_BYTES: Final = 256 * 1024
#: MessageGroupId for FIFO bodies that have no usable user_id (malformed ones, mostly).
FALLBACK_GROUP: Final = "no-user-id"
#: What SQS accepts as a MessageGroupId: 1-128 characters from ``!`` to ``~``.
MESSAGE_GROUP_ID: Final = re.compile(r"[!-~]{1,128}")


@dataclass(frozen=True)
class SendFailure:
    """One entry SQS refused (or that could never fit a call): its position in the input."""

    index: int
    code: str
    message: str


@dataclass
class SendResult:
    """What a send did: ``message_ids[i]`` is the MessageId of input ``i``, when it was sent."""

    sent: int = 0
    message_ids: dict[int, str] = field(default_factory=dict)
    failures: list[SendFailure] = field(default_factory=list)
    elapsed_s: float = 0.0


def read_ndjson(path: Path) -> Iterator[str]:
    """The non-blank lines of ``path``, each a body, verbatim (only the line ending is removed).

    Splits on ``\\n`` alone: ``str.splitlines`` would also split on U+2028, which JSON strings
    may contain raw. A file that cannot be read, or is not UTF-8, is a ``CliError`` naming the
    file and the byte offset, never its content.
    """
    shown = printable(str(path))
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{shown} is not UTF-8 text (first bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise CliError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    except ValueError:  # a path with a NUL character
        raise CliError(f"cannot read {shown}: not a valid path") from None
    for line in text.split("\n"):
        body = line.removesuffix("\r")
        if body.strip():
            yield body


def group_of(body: str) -> str:
    """The FIFO MessageGroupId of ``body``: its user_id, so each user's logins stay ordered.

    SQS allows 1-128 characters of printable ASCII without spaces (``!`` to ``~``) in a group id.
    A user_id outside that (empty, too long, a space, non-ASCII) shares the fallback group rather
    than being refused by SQS; ordering within that group is still per send order.
    """
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return FALLBACK_GROUP
    user = obj.get("user_id") if isinstance(obj, dict) else None
    if isinstance(user, str) and MESSAGE_GROUP_ID.fullmatch(user):
        return user
    return FALLBACK_GROUP


def _attributes_size(attributes: Attributes | None) -> int:
    if not attributes:
        return 0
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        binary = value.get("BinaryValue", b"")
        size += len(str(value.get("StringValue", "")).encode())
        size += len(binary) if isinstance(binary, bytes) else len(str(binary).encode())
    return size


def message_limit(sqs: SQSClient, queue_url: str) -> int:
    """The queue's ``MaximumMessageSize``: the most bytes (body and attributes) of one message,
    and what this sender puts in one SendMessageBatch call. Queues made since August 2025 take
    1 MiB by default, older ones 256 KiB unless raised. ``FALLBACK_MESSAGE_BYTES`` when SQS
    refuses the read (no sqs:GetQueueAttributes) or the value is missing or out of range; a
    network failure propagates, as the send itself would fail the same way."""
    from botocore.exceptions import ClientError

    try:
        got = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])
    except ClientError:
        return FALLBACK_MESSAGE_BYTES
    raw = got.get("Attributes", {}).get("MaximumMessageSize", "")
    if not (raw.isascii() and raw.isdigit()) or not 1024 <= int(raw) <= MAX_SQS_BYTES:
        return FALLBACK_MESSAGE_BYTES
    return int(raw)


def send_bodies(
    sqs: SQSClient,
    queue_url: str,
    bodies: Iterable[str],
    *,
    attributes: Callable[[int], Attributes | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> SendResult:
    """Send every body in order; per-entry failures are collected, never raised.

    ``attributes(i)`` may give message attributes for input ``i``. ``on_progress`` gets the count
    of inputs handled so far after each call. ``limit`` is the byte limit of one message and of
    one call, by default ``message_limit`` of the queue. An SQS error for a whole call (no such
    queue, no credentials) propagates.
    """
    if limit is None:
        limit = message_limit(sqs, queue_url)
    fifo = queue_url.endswith(".fifo")
    nonce = uuid.uuid4().hex
    result = SendResult()
    started = time.monotonic()
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    positions: list[int] = []
    size = 0
    handled = 0

    def flush() -> None:
        nonlocal entries, positions, size
        if not entries:
            return
        out = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for ok in out.get("Successful", []):
            result.message_ids[positions[int(ok["Id"])]] = str(ok["MessageId"])
            result.sent += 1
        for bad in out.get("Failed", []):
            result.failures.append(
                SendFailure(positions[int(bad["Id"])], str(bad.get("Code")), str(bad.get("Message", "")))
            )
        entries, positions, size = [], [], 0
        if on_progress is not None:
            on_progress(handled)

    for index, body in enumerate(bodies):
        attrs = attributes(index) if attributes is not None else None
        entry_size = len(body.encode("utf-8", "surrogatepass")) + _attributes_size(attrs)
        if entry_size > limit:
            result.failures.append(
                SendFailure(index, "MessageTooLong", f"{entry_size} bytes; the queue takes at most {limit}")
            )
            handled += 1
            continue
        if len(entries) == MAX_BATCH_ENTRIES or size + entry_size > limit:
            flush()
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(len(entries)), "MessageBody": body}
        if attrs:
            entry["MessageAttributes"] = dict(attrs)
        if fifo:
            entry["MessageGroupId"] = group_of(body)
            entry["MessageDeduplicationId"] = f"{nonce}-{index}"
        entries.append(entry)
        positions.append(index)
        size += entry_size
        handled += 1
    flush()
    result.failures.sort(key=lambda f: f.index)
    result.elapsed_s = time.monotonic() - started
    return result
