"""Build the Lambda SQS event exactly as the event source mapping does.

Two front ends share one record shape (``login_etl.types.SQSRecord``):

- ``record_from_message`` converts one message of boto3's ``receive_message`` output, for the
  local runner (``login-etl drain``), so the handler cannot tell it from AWS;
- ``make_record`` fabricates a record from a body, for ``events/*.json`` and the tests. It is
  deterministic when ``message_id`` and ``sent_timestamp_ms`` are given.

The shape follows the AWS Lambda developer guide ("Using Lambda with Amazon SQS", the sample
event) and ``sam local generate-event sqs receive-message``: camelCase top-level keys, system
attributes as strings under ``attributes``, and message attributes as
``{stringValue|binaryValue, stringListValues, binaryListValues, dataType}`` with binaries in
base64. ReceiveMessage's shape is PascalCase (``MessageId``, ``Body``, ``MD5OfBody``, ...), with
binaries as raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, cast
from urllib.parse import urlsplit

from login_etl.types import SQSEvent, SQSMessageAttribute, SQSRecord, SQSRecordAttributes

__all__ = [
    "DEFAULT_QUEUE_ARN",
    "DEFAULT_REGION",
    "DEFAULT_SENDER_ID",
    "make_event",
    "make_record",
    "queue_arn_from_url",
    "record_from_message",
]

DEFAULT_REGION: Final = "us-east-1"
#: The account id AWS uses in its documentation examples; LocalStack's is 000000000000.
DEFAULT_ACCOUNT: Final = "123456789012"
DEFAULT_QUEUE_ARN: Final = f"arn:aws:sqs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:login-etl-logins"
#: An IAM user id in the form SQS reports for a sender (the AWS docs' sample value).
DEFAULT_SENDER_ID: Final = "AIDAIENQZJOLO23YVJ4VO"
#: How long after sending the first receive happens, in the fabricated records.
_FIRST_RECEIVE_DELAY_MS: Final = 12
_EVENT_SOURCE: Final = "aws:sqs"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def queue_arn_from_url(queue_url: str, region: str, account: str | None = None) -> str:
    """Return the ARN of the queue at ``queue_url``.

    Every SQS-compatible endpoint (AWS, LocalStack, moto) names a queue as
    ``<scheme>://<host>/<account>/<queue name>``. ``account`` overrides the URL's account id.
    Raises ``ValueError`` if the URL has no queue name, or no account and none is given.
    """
    parts = [p for p in urlsplit(queue_url).path.split("/") if p]
    if not parts:
        raise ValueError(f"not an SQS queue URL (no queue name): {queue_url!r}")
    name = parts[-1]
    url_account = parts[-2] if len(parts) >= 2 else None
    acct = account or url_account
    if not acct:
        raise ValueError(f"not an SQS queue URL (no account id): {queue_url!r}")
    return f"arn:{_partition(region)}:sqs:{region}:{acct}:{name}"


def _b64(value: bytes | bytearray | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def _message_attribute(value: Mapping[str, Any]) -> SQSMessageAttribute:
    """Convert one ReceiveMessage MessageAttributeValue to Lambda's camelCase shape."""
    out: SQSMessageAttribute = {}
    if "StringValue" in value:
        out["stringValue"] = str(value["StringValue"])
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    # Lambda always sends both list keys, empty when unused.
    out["stringListValues"] = [str(v) for v in value.get("StringListValues", [])]
    out["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
    out["dataType"] = str(value["DataType"])
    return out


def record_from_message(message: Mapping[str, Any], *, queue_arn: str, region: str) -> SQSRecord:
    """Convert one message of ``receive_message`` output into a Lambda SQS record.

    The message must have been received with ``MessageSystemAttributeNames=["All"]`` and
    ``MessageAttributeNames=["All"]``; every system attribute is passed through as a string, as
    Lambda does. Raises ``KeyError`` if MessageId, ReceiptHandle, Body or MD5OfBody is absent.
    """
    attributes: dict[str, str] = {str(k): str(v) for k, v in message.get("Attributes", {}).items()}
    record: SQSRecord = {
        "messageId": str(message["MessageId"]),
        "receiptHandle": str(message["ReceiptHandle"]),
        "body": str(message["Body"]),
        # The TypedDict lists the attributes Lambda documents; SQS may add more, which Lambda
        # passes through too, so the whole mapping is kept.
        "attributes": cast(SQSRecordAttributes, attributes),
        "messageAttributes": {
            str(name): _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": str(message["MD5OfBody"]),
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "eventSource": _EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    return record


def _receipt_handle(message_id: str, receive_count: int) -> str:
    # Real handles are opaque base64 blobs that change on every receive; this one is stable for
    # (message, receive) so that generated files are reproducible.
    digest = hashlib.sha256(f"{message_id}#{receive_count}".encode()).digest()
    return "AQEB" + base64.b64encode(digest * 3).decode("ascii")


def make_record(
    body: str,
    *,
    message_id: str | None = None,
    queue_arn: str = DEFAULT_QUEUE_ARN,
    region: str = DEFAULT_REGION,
    sent_timestamp_ms: int | None = None,
    receive_count: int = 1,
    group_id: str | None = None,
    dedup_id: str | None = None,
    sequence_number: str | None = None,
) -> SQSRecord:
    """Fabricate the Lambda SQS record for ``body``, as if SQS had delivered it.

    - ``message_id`` defaults to a random UUID, like SQS's; ``sent_timestamp_ms`` to now.
    - ``receive_count`` > 1 describes a redelivery (ApproximateReceiveCount).
    - ``group_id`` makes it a FIFO record: MessageGroupId, MessageDeduplicationId (``dedup_id``,
      or the SHA-256 of the body, as content-based deduplication does) and SequenceNumber
      (``sequence_number``, or 20 digits that grow with the sent time). The queue ARN must
      then name a ``.fifo`` queue.

    md5OfBody is the real MD5 of the UTF-8 body. Raises ``ValueError`` on inconsistent input.
    """
    if receive_count < 1:
        raise ValueError("receive_count must be >= 1")
    is_fifo_queue = queue_arn.endswith(".fifo")
    if group_id is None and (dedup_id is not None or sequence_number is not None):
        raise ValueError("dedup_id and sequence_number need a group_id (FIFO)")
    if (group_id is not None) != is_fifo_queue:
        raise ValueError("a FIFO record (group_id) needs a .fifo queue ARN, and vice versa")
    mid = message_id if message_id is not None else str(uuid.uuid4())
    sent = sent_timestamp_ms if sent_timestamp_ms is not None else int(time.time() * 1000)
    attributes: SQSRecordAttributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent),
        "SenderId": DEFAULT_SENDER_ID,
        "ApproximateFirstReceiveTimestamp": str(sent + _FIRST_RECEIVE_DELAY_MS),
    }
    if group_id is not None:
        attributes["MessageGroupId"] = group_id
        attributes["MessageDeduplicationId"] = (
            dedup_id if dedup_id is not None else hashlib.sha256(body.encode()).hexdigest()
        )
        if sequence_number is None:
            tiebreak = int.from_bytes(hashlib.sha256(mid.encode()).digest()[:4], "big") % 10**7
            sequence_number = f"{sent:013d}{tiebreak:07d}"
        attributes["SequenceNumber"] = sequence_number
    return {
        "messageId": mid,
        "receiptHandle": _receipt_handle(mid, receive_count),
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": _EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def make_event(records: Iterable[SQSRecord]) -> SQSEvent:
    """Wrap records in the event Lambda passes to the handler: ``{"Records": [...]}``."""
    return {"Records": list(records)}
