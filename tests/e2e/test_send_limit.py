"""The sender takes its size limit from the queue, not from a hard-coded 256 KiB.

SQS takes messages up to 1 MiB since August 2025; a queue's ``MaximumMessageSize`` (1 MiB by
default for new queues, 1 KiB to 1 MiB) is the limit of one message, and SendMessageBatch's sum
is capped at 1 MiB too. ``send_bodies`` reads the attribute once and uses it for both, and falls
back to 256 KiB when it cannot be read. Against moto's server (whose default is 1 MiB and which
refuses a body over the queue's limit and a call over 1 MiB) and, for the fallback, a loopback
peer that refuses GetQueueAttributes as AWS does for a role without that permission.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from login_etl_cli.sender import FALLBACK_MESSAGE_BYTES, message_limit, send_bodies
from support.aws_peer import aws_error, aws_json_peer

from .conftest import QueueFactory

KIB = 1024


def _received(sqs: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in got]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
    return bodies


def test_a_new_queue_takes_a_body_over_256_kib(make_queue: QueueFactory) -> None:
    queue = make_queue()
    body = "x" * (300 * KIB)

    result = send_bodies(queue.sqs, queue.url, [body])

    assert (result.sent, result.failures) == (1, [])
    assert _received(queue.sqs, queue.url) == [body]


def test_one_call_never_carries_more_than_the_queue_limit(make_queue: QueueFactory) -> None:
    """Ten 200 KiB bodies: five per call under 1 MiB (one per call at 256 KiB, and moto would
    refuse a call of all ten as BatchRequestTooLong)."""
    queue = make_queue()
    bodies = [chr(ord("a") + i) * (200 * KIB) for i in range(10)]
    calls: list[int] = []

    result = send_bodies(queue.sqs, queue.url, bodies, on_progress=calls.append)

    assert (result.sent, result.failures) == (10, [])
    assert calls == [5, 10]
    assert sorted(_received(queue.sqs, queue.url)) == bodies


def test_a_queue_with_a_lower_limit_is_respected_per_message_and_per_call(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"MaximumMessageSize": "4096"})
    bodies = ["a" * 1500, "b" * 5000, "c" * 1500, "d" * 1500]
    calls: list[int] = []

    result = send_bodies(queue.sqs, queue.url, bodies, on_progress=calls.append)

    assert result.sent == 3
    [refused] = result.failures
    assert (refused.index, refused.code) == (1, "MessageTooLong")
    assert refused.message == "5000 bytes; the queue takes at most 4096"
    assert calls == [3, 4], "two 1500-byte bodies per call: a third would pass 4096"
    assert sorted(_received(queue.sqs, queue.url)) == [bodies[0], bodies[2], bodies[3]]


def test_moto_reports_the_1_mib_default(make_queue: QueueFactory) -> None:
    queue = make_queue()
    assert message_limit(queue.sqs, queue.url) == 1024 * KIB


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (400, aws_error("AccessDenied")),  # a role with sqs:SendMessage only
        (200, {"Attributes": {}}),  # the attribute missing
        (200, {"Attributes": {"MaximumMessageSize": "9999999"}}),  # out of SQS's range
    ],
)
def test_the_limit_falls_back_to_256_kib_when_it_cannot_be_read(status: int, answer: dict[str, Any]) -> None:
    with aws_json_peer(status, answer) as endpoint:
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert message_limit(sqs, f"{endpoint}/123456789012/q") == FALLBACK_MESSAGE_BYTES == 256 * KIB
