"""boto3 clients for the commands: the standard credential chain, plus an explicit endpoint."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from .errors import CliError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

__all__ = ["create_queue_with_dlq", "queue_depth", "region_from_queue_url", "sqs_client"]

# sqs.<region>.amazonaws.com, <region>.queue.amazonaws.com, sqs.<region>.localhost.localstack.cloud
_REGION_IN_HOST: Final = re.compile(
    r"^(?:sqs\.(?P<a>[a-z]{2}(?:-[a-z]+)+-\d)\.|(?P<b>[a-z]{2}(?:-[a-z]+)+-\d)\.queue\.)"
)


def region_from_queue_url(queue_url: str) -> str | None:
    """The region an AWS or LocalStack queue URL names in its host, if any."""
    match = _REGION_IN_HOST.match(urlsplit(queue_url).hostname or "")
    return (match.group("a") or match.group("b")) if match else None


def sqs_client(*, endpoint_url: str | None, region: str | None, queue_url: str | None = None) -> SQSClient:
    """An SQS client. The region is ``region``, else the queue URL's, else ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION`` (botocore reads only this one), else the profile's;
    ``AWS_ENDPOINT_URL`` is honoured by boto3 when ``endpoint_url`` is None."""
    import boto3
    from botocore.exceptions import InvalidRegionError
    from login_etl.config import aws_region

    chosen = region or (region_from_queue_url(queue_url) if queue_url else None) or aws_region()
    try:
        return boto3.client("sqs", endpoint_url=endpoint_url, region_name=chosen)
    except (InvalidRegionError, ValueError) as exc:  # a region, or "Invalid endpoint: ..."
        what = "region" if isinstance(exc, InvalidRegionError) else "endpoint URL"
        raise CliError(
            f"the AWS {what} is not valid: check --region / AWS_REGION / AWS_DEFAULT_REGION and "
            "--endpoint-url / AWS_ENDPOINT_URL"
        ) from None


def queue_depth(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """``(visible, in flight)``: ApproximateNumberOfMessages and ...NotVisible."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def create_queue_with_dlq(
    sqs: SQSClient, name: str, *, visibility_timeout_s: int, max_receive_count: int, fifo: bool = False
) -> tuple[str, str]:
    """``(queue_url, dlq_url)``: queue ``name`` whose redrive policy moves a message to its own DLQ
    (``name-dlq``) after ``max_receive_count`` receives, the template's shape, for local runs."""
    from .runner import queue_arn

    suffix = ".fifo" if fifo else ""
    fifo_attrs: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if fifo else {}
    dlq_url = str(sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attrs)["QueueUrl"])
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": str(max_receive_count)}
    attributes: dict[QueueAttributeNameType, str] = {
        **fifo_attrs,
        "VisibilityTimeout": str(visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive),
    }
    return str(sqs.create_queue(QueueName=name + suffix, Attributes=attributes)["QueueUrl"]), dlq_url
