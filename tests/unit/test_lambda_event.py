"""The Lambda SQS event we build has exactly the shape AWS sends.

The reference record is the sample event of the AWS Lambda developer guide ("Using Lambda with
Amazon SQS"), which is also what ``sam local generate-event sqs receive-message`` prints.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import boto3
import pytest
from login_etl_cli.lambda_event import (
    DEFAULT_QUEUE_ARN,
    make_event,
    make_record,
    queue_arn_from_url,
    record_from_message,
)
from moto import mock_aws

# The AWS docs' sample record, verbatim in shape (values are the docs' own).
AWS_SAMPLE_RECORD: dict[str, Any] = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    "body": "Test message.",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
    },
    "messageAttributes": {},
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue",
    "awsRegion": "us-east-2",
}
# What `sam local generate-event sqs receive-message` prints (SAM CLI 1.170.0), verbatim.
SAM_GENERATED_RECORD: dict[str, Any] = {
    "messageId": "19dd0b57-b21e-4ac1-bd88-01bbb068cb78",
    "receiptHandle": "MessageReceiptHandle",
    "body": "Hello from SQS!",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1523232000000",
        "SenderId": "123456789012",
        "ApproximateFirstReceiveTimestamp": "1523232000001",
    },
    "messageAttributes": {},
    "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:MyQueue",
    "awsRegion": "us-east-1",
}
# A FIFO record's extra system attributes (AWS docs, "FIFO queue message event").
FIFO_ATTRIBUTES = {"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _shape(value: Any) -> Any:
    """The value's key structure and leaf types, for comparing shapes, not values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


@pytest.mark.parametrize("reference", [AWS_SAMPLE_RECORD, SAM_GENERATED_RECORD])
def test_made_record_has_the_shape_lambda_sends(reference: dict[str, Any]) -> None:
    record = make_record("Test message.", message_id="m-1", sent_timestamp_ms=1545082649183)
    assert _shape(record) == _shape(reference)


def test_made_record_matches_sam_generate_event_value_for_value() -> None:
    ref = SAM_GENERATED_RECORD
    record = make_record(
        ref["body"],
        message_id=ref["messageId"],
        queue_arn=ref["eventSourceARN"],
        region=ref["awsRegion"],
        sent_timestamp_ms=int(ref["attributes"]["SentTimestamp"]),
    )
    made: dict[str, Any] = dict(record)
    differing = {k for k in ref if made[k] != ref[k]}
    # Only the opaque handle, the sender and the first-receive delay are made up differently.
    assert differing == {"receiptHandle", "attributes"}
    assert record["md5OfBody"] == ref["md5OfBody"]


def test_md5_of_body_is_the_real_md5() -> None:
    record = make_record("Test message.")
    assert record["md5OfBody"] == AWS_SAMPLE_RECORD["md5OfBody"]
    body = '{"ip": "ü"}'
    assert make_record(body)["md5OfBody"] == _md5(body.encode())


def test_made_record_is_deterministic_given_id_and_time() -> None:
    a = make_record("x", message_id="m-1", sent_timestamp_ms=1_700_000_000_000)
    b = make_record("x", message_id="m-1", sent_timestamp_ms=1_700_000_000_000)
    assert a == b
    assert a["attributes"]["SentTimestamp"] == "1700000000000"
    assert int(a["attributes"]["ApproximateFirstReceiveTimestamp"]) >= 1_700_000_000_000


def test_redelivery_changes_receive_count_and_receipt_handle_only() -> None:
    first = make_record("x", message_id="m-1", sent_timestamp_ms=1)
    again = make_record("x", message_id="m-1", sent_timestamp_ms=1, receive_count=3)
    assert again["attributes"]["ApproximateReceiveCount"] == "3"
    assert again["receiptHandle"] != first["receiptHandle"]
    assert again["messageId"] == first["messageId"]
    assert again["md5OfBody"] == first["md5OfBody"]


def test_default_message_ids_are_unique_uuids() -> None:
    ids = {make_record("x")["messageId"] for _ in range(50)}
    assert len(ids) == 50


def test_fifo_record_carries_group_dedup_and_sequence() -> None:
    arn = "arn:aws:sqs:us-east-1:123456789012:logins.fifo"
    r1 = make_record("a", message_id="1", queue_arn=arn, sent_timestamp_ms=10, group_id="g")
    r2 = make_record("b", message_id="2", queue_arn=arn, sent_timestamp_ms=11, group_id="g")
    assert set(r1["attributes"]) >= FIFO_ATTRIBUTES
    assert r1["attributes"]["MessageGroupId"] == "g"
    # content-based deduplication: the SHA-256 of the body
    assert r1["attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"a").hexdigest()
    seq1, seq2 = r1["attributes"]["SequenceNumber"], r2["attributes"]["SequenceNumber"]
    assert len(seq1) == 20 and seq1.isdigit()
    assert int(seq1) < int(seq2)


def test_fifo_explicit_ids_are_kept() -> None:
    arn = "arn:aws:sqs:us-east-1:123456789012:logins.fifo"
    r = make_record("a", queue_arn=arn, group_id="g", dedup_id="d", sequence_number="7")
    assert r["attributes"]["MessageDeduplicationId"] == "d"
    assert r["attributes"]["SequenceNumber"] == "7"


def test_standard_record_has_no_fifo_attributes() -> None:
    assert not FIFO_ATTRIBUTES & set(make_record("a")["attributes"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"group_id": "g"},  # FIFO record on a standard queue
        {"queue_arn": "arn:aws:sqs:us-east-1:1:q.fifo"},  # FIFO queue without a group
        {"dedup_id": "d"},
        {"receive_count": 0},
    ],
)
def test_inconsistent_records_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_record("a", **kwargs)


def test_event_wraps_records() -> None:
    records = [make_record("a"), make_record("b")]
    event = make_event(iter(records))
    assert event == {"Records": records}
    json.dumps(event)  # JSON-serialisable, as Lambda requires


@pytest.mark.parametrize(
    ("url", "region", "account", "arn"),
    [
        (
            "https://sqs.us-east-1.amazonaws.com/123456789012/logins",
            "us-east-1",
            None,
            "arn:aws:sqs:us-east-1:123456789012:logins",
        ),
        (
            "http://localhost:4566/000000000000/logins.fifo",
            "eu-west-1",
            None,
            "arn:aws:sqs:eu-west-1:000000000000:logins.fifo",
        ),
        (
            "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/q",
            "us-east-1",
            None,
            "arn:aws:sqs:us-east-1:000000000000:q",
        ),
        (
            "http://127.0.0.1:5000/123456789012/q",
            "us-east-1",
            "999999999999",
            "arn:aws:sqs:us-east-1:999999999999:q",
        ),
        ("http://h/q", "us-east-1", "111111111111", "arn:aws:sqs:us-east-1:111111111111:q"),
        (
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
            "cn-north-1",
            None,
            "arn:aws-cn:sqs:cn-north-1:123456789012:q",
        ),
        (
            "https://sqs.us-gov-west-1.amazonaws.com/123456789012/q",
            "us-gov-west-1",
            None,
            "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q",
        ),
    ],
)
def test_queue_arn_from_url(url: str, region: str, account: str | None, arn: str) -> None:
    assert queue_arn_from_url(url, region, account) == arn


@pytest.mark.parametrize("url", ["http://localhost:4566/", "http://localhost:4566/q"])
def test_queue_arn_from_url_refuses_urls_without_name_or_account(url: str) -> None:
    with pytest.raises(ValueError):
        queue_arn_from_url(url, "us-east-1")


# --- record_from_message: the runner's path, from a real ReceiveMessage response ---------------


@pytest.fixture
def received() -> dict[str, Any]:
    """One message as boto3's receive_message returns it (moto's in-memory SQS, no socket)."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="logins")["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody='{"user_id": "u"}',
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": "app"},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                "n": {"DataType": "Number", "StringValue": "42"},
            },
        )
        out = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        message: dict[str, Any] = dict(out["Messages"][0])
        message["_url"] = url
        return message


def test_received_message_becomes_a_lambda_record(received: dict[str, Any]) -> None:
    arn = queue_arn_from_url(received["_url"], "us-east-1")
    record = record_from_message(received, queue_arn=arn, region="us-east-1")
    # Every key of the AWS sample, plus md5OfMessageAttributes since this one has attributes.
    assert set(record) == set(AWS_SAMPLE_RECORD) | {"md5OfMessageAttributes"}
    assert record["messageId"] == received["MessageId"]
    assert record["receiptHandle"] == received["ReceiptHandle"]
    assert record["body"] == '{"user_id": "u"}'
    assert record["md5OfBody"] == _md5(b'{"user_id": "u"}')
    assert record["md5OfMessageAttributes"] == received["MD5OfMessageAttributes"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    attrs = record["attributes"]
    assert set(AWS_SAMPLE_RECORD["attributes"]) <= set(attrs)
    assert all(isinstance(v, str) for v in attrs.values())
    assert attrs["ApproximateReceiveCount"] == "1"


def test_message_attributes_take_lambdas_camel_case_shape(received: dict[str, Any]) -> None:
    record = record_from_message(received, queue_arn=DEFAULT_QUEUE_ARN, region="us-east-1")
    assert record["messageAttributes"] == {
        "source": {
            "stringValue": "app",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
        "n": {
            "stringValue": "42",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
    }
    json.dumps(record)  # binaries are base64 text, so the record is JSON-serialisable


def test_message_without_attributes_has_null_md5_of_attributes() -> None:
    message = {
        "MessageId": "m",
        "ReceiptHandle": "h",
        "Body": "b",
        "MD5OfBody": _md5(b"b"),
        "Attributes": {"SentTimestamp": "1", "ApproximateReceiveCount": "2"},
    }
    record = record_from_message(message, queue_arn=DEFAULT_QUEUE_ARN, region="us-east-1")
    assert record["md5OfMessageAttributes"] is None
    assert record["messageAttributes"] == {}
    assert record["attributes"] == {"SentTimestamp": "1", "ApproximateReceiveCount": "2"}


def test_binary_list_values_are_base64() -> None:
    message = {
        "MessageId": "m",
        "ReceiptHandle": "h",
        "Body": "b",
        "MD5OfBody": "x",
        "MessageAttributes": {
            "l": {"DataType": "Binary", "BinaryListValues": [b"a", b"b"], "StringListValues": []}
        },
    }
    record = record_from_message(message, queue_arn=DEFAULT_QUEUE_ARN, region="us-east-1")
    assert record["messageAttributes"]["l"]["binaryListValues"] == ["YQ==", "Yg=="]


def test_module_is_mypy_strict_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    # pyproject's mypy run covers function/ only; this wire-format builder is shared with the
    # runner, so it is held to the same bar here.
    from pathlib import Path

    from mypy import api

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("MYPYPATH", f"{root / 'function'}:{root / 'cli'}")
    out, err, status = api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(root / ".mypy_cache"),
            str(root / "cli" / "login_etl_cli" / "lambda_event.py"),
            str(root / "scripts" / "make_events.py"),
        ]
    )
    assert status == 0, out + err
