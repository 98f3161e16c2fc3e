"""Drain an SQS queue through the handler, the way Lambda's SQS event source mapping does.

One batch:

1. gather: long-poll ``ReceiveMessage`` (up to 10 messages a call) until the batch size is
   reached, the batching window has passed since the first message arrived, or a receive comes
   back empty; with no window, one receive makes a batch (as the mapping does);
2. build the exact Lambda SQS event (``lambda_event.record_from_message``) and call the handler
   with a Lambda context;
3. delete only the successes, 10 per ``DeleteMessageBatch``. Failures are left alone: their
   visibility timeout expires, SQS redelivers them, and after ``maxReceiveCount`` the queue's
   redrive policy moves them to the DLQ. Nothing is ever deleted before the handler returned.

As on Lambda, a handler that raises (every record failed transiently, or a malformed event) fails
the whole batch, and so does a response naming an identifier that is not in the batch.

The handler keeps one database connection per process, like one Lambda container: to drain with
more concurrency, run several processes, never several threads of one process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Final

from .context import LocalContext
from .errors import CliError
from .lambda_event import make_event, record_from_message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = [
    "MAX_RECEIVE",
    "POLL_WAIT_S",
    "DrainStats",
    "check_batching",
    "drain",
    "drain_until_settled",
    "failed_ids",
    "queue_arn",
]

log = logging.getLogger(__name__)

#: SQS returns at most 10 messages per ReceiveMessage.
MAX_RECEIVE: Final = 10
#: Long-poll wait per ReceiveMessage. The mapping waits 20 s; a short wait keeps a stop request
#: (SIGINT/SIGTERM) answered within about this long, since a long poll cannot be interrupted.
#: It is still a long poll, so an empty answer means the queue is empty, not a sampled miss.
POLL_WAIT_S: Final = 1
#: Lambda's invocation payload limit; the mapping stops gathering before the event exceeds it.
MAX_EVENT_BYTES: Final = 6 * 1024 * 1024
#: Per-record overhead of the Lambda event besides the body (attributes, ids, ARN), generously.
_RECORD_OVERHEAD_BYTES: Final = 1024

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class DrainStats:
    """Cumulative counts of one ``drain`` call. ``succeeded + failed == received`` always."""

    batches: int = 0
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    deleted: int = 0
    elapsed_s: float = 0.0


def queue_arn(sqs: SQSClient, queue_url: str) -> str:
    """The queue's real ARN (works the same on AWS, LocalStack and moto)."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def _default_handler() -> Handler:
    # Lazy: importing the handler creates Powertools' Logger and Metrics, so the caller must have
    # set any POWERTOOLS_* environment first.
    from login_etl.handler import lambda_handler

    return lambda_handler  # type: ignore[no-any-return]


def failed_ids(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The message ids to leave for redelivery, read as Lambda reads a partial-batch response.

    ``None``, ``{}`` or an empty ``batchItemFailures`` mean every record succeeded. An item with a
    missing or empty identifier, or one that names no record of the batch, fails the whole batch.
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return everything
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return everything
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, str) or ident not in everything:
            return everything
        failed.add(ident)
    return failed


def _gather(
    sqs: SQSClient,
    queue_url: str,
    batch_size: int,
    window_s: float,
    stop: threading.Event,
) -> tuple[list[MessageTypeDef], bool]:
    """Receive one batch; return ``(messages, queue_seemed_empty)``.

    A stop request ends the gathering early: what was already received is still processed (and
    so not received again later), which costs one short batch rather than a receive count.
    """
    messages: list[MessageTypeDef] = []
    size = 0
    window_end = 0.0
    while len(messages) < batch_size and not stop.is_set():
        if messages:
            remaining = window_end - time.monotonic()
            if remaining <= 0:
                break
            wait = min(POLL_WAIT_S, math.ceil(remaining))
        else:
            wait = POLL_WAIT_S
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(MAX_RECEIVE, batch_size - len(messages)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            if messages:
                continue  # keep filling until the window closes
            return messages, True
        if not messages:
            window_end = time.monotonic() + window_s
        messages.extend(got)
        size += sum(len(m.get("Body", "")) + _RECORD_OVERHEAD_BYTES for m in got)
        if size >= MAX_EVENT_BYTES - MAX_RECEIVE * (256 * 1024 + _RECORD_OVERHEAD_BYTES):
            break
    return messages, False


def _delete(sqs: SQSClient, queue_url: str, messages: Sequence[Mapping[str, Any]]) -> int:
    """Delete ``messages`` 10 at a time; return how many SQS confirmed.

    A failed delete is harmless: the message comes back and counts as a duplicate, since every
    write is idempotent on message_id.
    """
    deleted = 0
    for start in range(0, len(messages), MAX_RECEIVE):
        chunk = messages[start : start + MAX_RECEIVE]
        out = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
        deleted += len(out.get("Successful", []))
        for failure in out.get("Failed", []):
            log.warning("delete failed (the message will be redelivered): %s", failure.get("Code"))
    return deleted


def check_batching(batch_size: int, window_s: float) -> None:
    """The one home of drain's rules on batching, for ``login-etl drain``, the demo and ``drain``.

    The event source mapping refuses a batch size above 10 without a batching window of at least
    one second; without a window one receive (at most 10 messages) makes a batch anyway.
    """
    if batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    if window_s < 0:
        raise CliError("--window must not be negative")
    if batch_size > 10 and window_s < 1:
        raise CliError("--batch-size above 10 needs --window of at least 1 second, as on Lambda")


def drain(
    sqs: SQSClient,
    queue_url: str,
    *,
    batch_size: int = 10,
    window_s: float = 0.0,
    until_empty: bool = True,
    stop: threading.Event | None = None,
    handler: Callable[[dict[str, Any], Any], Any] | None = None,
    on_batch: Callable[[DrainStats], None] | None = None,
) -> DrainStats:
    """Drain ``queue_url`` through ``handler`` (default: ``login_etl.handler.lambda_handler``).

    - ``sqs`` is a boto3 SQS client; ``batch_size`` >= 1 and ``window_s`` >= 0 are the mapping's
      BatchSize and MaximumBatchingWindowInSeconds.
    - ``until_empty`` returns after a receive that finds no message; otherwise it runs until
      ``stop`` is set. A set ``stop`` ends the run after the batch in hand is processed and its
      successes deleted.
    - ``on_batch`` gets a copy of the cumulative stats after every batch.

    Handler exceptions are caught (that batch fails, as on Lambda); a ``KeyboardInterrupt`` or an
    SQS error propagates, and nothing whose handler call did not return is ever deleted.
    """
    check_batching(batch_size, window_s)
    stop = stop or threading.Event()
    call = handler or _default_handler()
    arn = queue_arn(sqs, queue_url)
    region = str(sqs.meta.region_name)
    stats = DrainStats()
    started = time.monotonic()
    while not stop.is_set():
        messages, empty = _gather(sqs, queue_url, batch_size, window_s, stop)
        if messages:
            records = [record_from_message(m, queue_arn=arn, region=region) for m in messages]
            ids = [r["messageId"] for r in records]
            try:
                response = call(dict(make_event(records)), LocalContext())
            except Exception as exc:  # noqa: BLE001 - Lambda fails the whole batch on any error
                log.warning(
                    "the handler raised %s: the whole batch is left for redelivery", type(exc).__name__
                )
                failed = set(ids)
            else:
                failed = failed_ids(response, ids)
            done = [m for m, mid in zip(messages, ids, strict=True) if mid not in failed]
            stats.deleted += _delete(sqs, queue_url, done)
            stats.batches += 1
            stats.received += len(messages)
            stats.succeeded += len(done)
            stats.failed += len(messages) - len(done)
            stats.elapsed_s = time.monotonic() - started
            if on_batch is not None:
                on_batch(replace(stats))
        if empty and until_empty:
            break
    stats.elapsed_s = time.monotonic() - started
    return stats


def drain_until_settled(
    sqs: SQSClient,
    queue_url: str,
    *,
    timeout_s: float,
    batch_size: int = 10,
    window_s: float = 0.0,
    handler: Handler | None = None,
    on_batch: Callable[[DrainStats], None] | None = None,
    on_drain: Callable[[DrainStats], None] | None = None,
    pause_s: float = 0.2,
) -> tuple[DrainStats, bool]:
    """Drain until the queue holds nothing visible or in flight; return the summed stats and
    whether it settled within ``timeout_s``.

    One ``drain`` that finds the queue empty is not the end: a failed message is in flight until
    its visibility timeout, then comes back for its retries, then moves to the DLQ. ``on_drain``
    gets each drain's own stats; ``on_batch`` is passed to every drain.
    """
    from .aws import queue_depth

    total = DrainStats()
    deadline = time.monotonic() + timeout_s
    while True:
        part = drain(
            sqs,
            queue_url,
            batch_size=batch_size,
            window_s=window_s,
            until_empty=True,
            handler=handler,
            on_batch=on_batch,
        )
        for counter in fields(DrainStats):
            setattr(total, counter.name, getattr(total, counter.name) + getattr(part, counter.name))
        if on_drain is not None:
            on_drain(part)
        if sum(queue_depth(sqs, queue_url)) == 0:
            return total, True
        if time.monotonic() > deadline:
            return total, False
        time.sleep(pause_s)
