"""Wire formats: the Lambda SQS event and the partial-batch response, as TypedDicts.

These mirror what the event source mapping sends and expects; ``login-etl drain`` builds exactly
this shape, so the handler cannot tell the local runner from AWS.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class SQSMessageAttribute(TypedDict, total=False):
    stringValue: str
    binaryValue: str
    stringListValues: list[str]
    binaryListValues: list[str]
    dataType: str


class SQSRecordAttributes(TypedDict, total=False):
    ApproximateReceiveCount: str
    SentTimestamp: str
    SenderId: str
    ApproximateFirstReceiveTimestamp: str
    MessageGroupId: str
    MessageDeduplicationId: str
    SequenceNumber: str
    AWSTraceHeader: str


class SQSRecord(TypedDict):
    messageId: str
    receiptHandle: str
    body: str
    attributes: SQSRecordAttributes
    messageAttributes: dict[str, SQSMessageAttribute]
    md5OfBody: str
    eventSource: str
    eventSourceARN: str
    awsRegion: str
    md5OfMessageAttributes: NotRequired[str | None]


class SQSEvent(TypedDict):
    Records: list[SQSRecord]


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]
