"""``login-etl status``: is the pipeline keeping up, what is it rejecting, is anything stuck.

Read from the database: rows landed and records rejected per hour (or per day), and the latest
``create_date``, from four columns that carry no PII (``user_logins.loaded_at`` and
``create_date``, ``user_logins_rejected.rejected_at`` and ``reason``). Both time filters are
range scans on an index (a BRIN on ``loaded_at``, the btree on ``rejected_at``), so the cost
follows the rows in the window, not the size of the table. With a queue URL: the queue's and its
DLQ's depth (queue attributes), and the age of the oldest message, which SQS publishes only as a
CloudWatch metric. It is not worked out by peeking: a receive, even with a zero visibility
timeout, counts as a delivery and moves the message toward ``maxReceiveCount`` and the DLQ.

The verdict rules are in docs/operations.md ("The verdict"); keep the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType, QueueAttributeNameType

__all__ = [
    "AGE_LIMIT_S",
    "RECENT",
    "QueueState",
    "Status",
    "Verdict",
    "judge",
    "read_database",
    "read_queue",
    "render",
    "sparkline",
    "to_json",
]

#: "Recent progress" is what landed in this window; a backlog bigger than that takes longer
#: than this to drain at the current pace.
RECENT: Final = timedelta(minutes=15)
#: The oldest-message age past which the pipeline is falling behind: OldestMessageAgeAlarm's
#: default threshold (template parameter OldestMessageAgeAlarmSeconds).
AGE_LIMIT_S: Final = 600
_HOURS: Final = 24
_TICKS: Final = "▁▂▃▄▅▆▇█"
_ASCII_TICKS: Final = "_.-=+*#@"
_TABLE_ROWS: Final = 6

# Only the tables' own non-PII columns. Buckets are UTC hours/days (date_trunc of the UTC time).
ROWS_SQL: Final = """
SELECT date_trunc(:unit, loaded_at AT TIME ZONE 'UTC') AS bucket, count(*), max(create_date)
FROM user_logins WHERE loaded_at >= :since AND loaded_at <= :until GROUP BY 1
"""
REJECTS_SQL: Final = """
SELECT date_trunc(:unit, rejected_at AT TIME ZONE 'UTC') AS bucket, reason, count(*)
FROM user_logins_rejected WHERE rejected_at >= :since AND rejected_at <= :until GROUP BY 1, 2
"""
RECENT_SQL: Final = """
SELECT (SELECT count(*) FROM user_logins WHERE loaded_at >= :since AND loaded_at <= :until)
     + (SELECT count(*) FROM user_logins_rejected WHERE rejected_at >= :since AND rejected_at <= :until)
"""


@dataclass(frozen=True)
class Bucket:
    """One hour (or day) of work: what landed in it, by when it landed (UTC)."""

    start: datetime
    inserted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    latest_create_date: date | None = None


@dataclass(frozen=True)
class QueueState:
    """Depths are ApproximateNumberOfMessages (waiting) and ...NotVisible (in flight)."""

    url: str
    waiting: int
    in_flight: int
    dlq_url: str | None
    dlq_waiting: int | None
    oldest_age_s: float | None
    #: Why ``oldest_age_s`` is None (no CloudWatch datapoint, or CloudWatch refused).
    age_note: str | None = None

    @property
    def backlog(self) -> int:
        return self.waiting + self.in_flight


@dataclass(frozen=True)
class Verdict:
    state: str  # "keeping up" | "falling behind" | "stuck" | "unknown"
    reason: str


@dataclass(frozen=True)
class Status:
    now: datetime
    unit: str  # "hour" | "day"
    buckets: list[Bucket]
    landed_recently: int
    queue: QueueState | None
    verdict: Verdict


# --- the database --------------------------------------------------------------------------------
def _window(now: datetime, days: int | None) -> tuple[str, list[datetime]]:
    if days is None:
        last = now.replace(minute=0, second=0, microsecond=0)
        return "hour", [last - timedelta(hours=i) for i in range(_HOURS - 1, -1, -1)]
    last = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return "day", [last - timedelta(days=i) for i in range(days - 1, -1, -1)]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_database(
    query: Callable[..., list[list[Any]]], *, days: int | None, now: datetime | None = None
) -> tuple[datetime, str, list[Bucket], int]:
    """``(now, unit, buckets oldest first, records landed in the last RECENT)``.

    ``now`` defaults to the database's clock, the one that stamped ``loaded_at``.
    """
    when = _utc(now if now is not None else query("SELECT now()")[0][0])
    unit, starts = _window(when, days)
    window = {"unit": unit, "since": starts[0], "until": when}
    inserted: dict[datetime, tuple[int, date | None]] = {
        _utc(bucket): (int(count), latest) for bucket, count, latest in query(ROWS_SQL, **window)
    }
    rejected: dict[datetime, dict[str, int]] = {}
    for bucket, reason, count in query(REJECTS_SQL, **window):
        rejected.setdefault(_utc(bucket), {})[str(reason)] = int(count)
    buckets = [
        Bucket(
            start,
            inserted.get(start, (0, None))[0],
            dict(sorted(rejected.get(start, {}).items())),
            inserted.get(start, (0, None))[1],
        )
        for start in starts
    ]
    [[recent]] = query(RECENT_SQL, since=when - RECENT, until=when)
    return when, unit, buckets, int(recent)


# --- the queue -------------------------------------------------------------------------------------
def _depth(sqs: SQSClient, url: str, *extra: QueueAttributeFilterType) -> dict[QueueAttributeNameType, str]:
    names: list[QueueAttributeFilterType] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        *extra,
    ]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]


def _dlq_url(sqs: SQSClient, redrive_policy: str | None) -> str | None:
    if not redrive_policy:
        return None
    arn = str(json.loads(redrive_policy)["deadLetterTargetArn"])
    *_, account, name = arn.split(":")
    url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return url


def _oldest_age(cloudwatch: Any, queue_name: str, now: datetime) -> tuple[float | None, str | None]:
    """The latest one-minute maximum of AWS/SQS ApproximateAgeOfOldestMessage, if CloudWatch has one."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now - RECENT,
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
    except ClientError as exc:
        return None, f"CloudWatch refused: {exc.response.get('Error', {}).get('Code', 'error')}"
    except BotoCoreError as exc:
        return None, f"CloudWatch unreachable: {type(exc).__name__}"
    if not points:
        return None, "no CloudWatch datapoint in the last 15 minutes"
    latest = max(points, key=lambda p: p["Timestamp"])
    return float(latest["Maximum"]), None


def read_queue(sqs: SQSClient, cloudwatch: Any, url: str, now: datetime) -> QueueState:
    """Depths from queue attributes (the DLQ found through the redrive policy); the age from CloudWatch."""
    attrs = _depth(sqs, url, "RedrivePolicy")
    dlq_url = _dlq_url(sqs, attrs.get("RedrivePolicy"))
    dlq_waiting = None
    if dlq_url is not None:
        dlq = _depth(sqs, dlq_url)
        dlq_waiting = int(dlq["ApproximateNumberOfMessages"]) + int(
            dlq["ApproximateNumberOfMessagesNotVisible"]
        )
    age, note = _oldest_age(cloudwatch, url.rstrip("/").rsplit("/", 1)[-1], now)
    return QueueState(
        url=url,
        waiting=int(attrs["ApproximateNumberOfMessages"]),
        in_flight=int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        dlq_url=dlq_url,
        dlq_waiting=dlq_waiting,
        oldest_age_s=age,
        age_note=note,
    )


# --- the verdict -----------------------------------------------------------------------------------
def judge(landed_recently: int, queue: QueueState | None) -> Verdict:
    """The rules of docs/operations.md, "The verdict", in the same order."""
    recent = f"{landed_recently:,} records landed in the last 15 minutes"
    if queue is None:
        return Verdict("unknown", f"{recent}; without --queue-url the backlog is not known")
    backlog = queue.backlog
    if backlog and not landed_recently:
        return Verdict(
            "stuck", f"{backlog:,} messages in the queue and nothing landed in the last 15 minutes"
        )
    if backlog and queue.oldest_age_s is not None and queue.oldest_age_s > AGE_LIMIT_S:
        return Verdict(
            "falling behind", f"the oldest message is {queue.oldest_age_s:,.0f} s old (limit {AGE_LIMIT_S} s)"
        )
    if backlog > landed_recently:
        return Verdict("falling behind", f"{backlog:,} messages in the queue, more than the {recent}")
    if not backlog:
        return Verdict("keeping up", f"the queue is empty; {recent}")
    return Verdict("keeping up", f"{backlog:,} messages in the queue, fewer than the {recent}")


def collect(
    query: Callable[..., list[list[Any]]],
    *,
    days: int | None,
    queue_reader: Callable[[datetime], QueueState] | None = None,
    now: datetime | None = None,
) -> Status:
    when, unit, buckets, recent = read_database(query, days=days, now=now)
    queue = queue_reader(when) if queue_reader is not None else None
    return Status(when, unit, buckets, recent, queue, judge(recent, queue))


# --- output --------------------------------------------------------------------------------------
def sparkline(values: Sequence[int], *, ascii_only: bool = False) -> str:
    """One character per value, scaled to the largest; a zero is a dot, any non-zero at least a tick."""
    ticks = _ASCII_TICKS if ascii_only else _TICKS
    top = max(values, default=0)
    return "".join("." if v <= 0 else ticks[min(len(ticks) - 1, (v * len(ticks) - 1) // top)] for v in values)


def _reasons(buckets: Sequence[Bucket]) -> list[str]:
    return sorted({reason for b in buckets for reason in b.rejected})


def _latest(buckets: Sequence[Bucket]) -> date | None:
    return max((b.latest_create_date for b in buckets if b.latest_create_date), default=None)


def _queue_line(queue: QueueState | None) -> str:
    if queue is None:
        return "queue: not read (pass --queue-url)"
    age = f"{queue.oldest_age_s:,.0f} s" if queue.oldest_age_s is not None else f"unknown ({queue.age_note})"
    dlq = f"{queue.dlq_waiting:,}" if queue.dlq_waiting is not None else "none configured"
    return (
        f"queue: {queue.waiting:,} waiting, {queue.in_flight:,} in flight; oldest message: {age}; DLQ: {dlq}"
    )


def render(status: Status, *, ascii_only: bool = False) -> str:
    """The terminal view: totals with a sparkline per series, the latest busy buckets, the verdict."""
    from .tables import table

    buckets = status.buckets
    last = f"the last {len(buckets)} {status.unit}s"
    out = [f"login-etl status: {last}, per {status.unit} (UTC), at {status.now:%Y-%m-%d %H:%M} UTC", ""]
    series: list[tuple[str, list[int]]] = [
        ("inserted", [b.inserted for b in buckets]),
        ("rejected", [sum(b.rejected.values()) for b in buckets]),
        *((f"  {r}", [b.rejected.get(r, 0) for b in buckets]) for r in _reasons(buckets)),
    ]
    rows = [(name, f"{sum(values):,}", sparkline(values, ascii_only=ascii_only)) for name, values in series]
    latest = _latest(buckets)
    rows.append(("latest create_date", "-" if latest is None else latest.isoformat(), ""))
    out += [table(rows, ("what", "total", f"per {status.unit}, oldest to newest")), ""]
    busy = [b for b in buckets if b.inserted or b.rejected][-_TABLE_ROWS:]
    if busy:
        fmt = "%Y-%m-%d %H:%M" if status.unit == "hour" else "%Y-%m-%d"
        detail = [
            (
                b.start.strftime(fmt),
                f"{b.inserted:,}",
                f"{sum(b.rejected.values()):,}",
                "-" if b.latest_create_date is None else b.latest_create_date.isoformat(),
            )
            for b in reversed(busy)
        ]
        out += [table(detail, (f"{status.unit} (UTC)", "inserted", "rejected", "latest create_date")), ""]
    else:
        out += [f"  nothing landed in {last}", ""]
    out.append("  " + _queue_line(status.queue))
    dlq = status.queue.dlq_waiting if status.queue else None
    warning = f"; {dlq:,} messages in the DLQ (docs/operations.md)" if dlq else ""
    out.append(f"verdict: {status.verdict.state}: {status.verdict.reason}{warning}")
    return "\n".join(out) + "\n"


def to_json(status: Status) -> dict[str, Any]:
    """The same facts for scripts: ISO times, counts as numbers, ``null`` for unknown."""

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date | datetime) else value

    buckets = [{k: plain(v) for k, v in asdict(b).items()} for b in status.buckets]
    totals_rejected: dict[str, int] = {}
    for b in status.buckets:
        for reason, n in b.rejected.items():
            totals_rejected[reason] = totals_rejected.get(reason, 0) + n
    queue = None if status.queue is None else {**asdict(status.queue), "backlog": status.queue.backlog}
    return {
        "now": status.now.isoformat(),
        "unit": status.unit,
        "buckets": buckets,
        "totals": {
            "inserted": sum(b.inserted for b in status.buckets),
            "rejected": dict(sorted(totals_rejected.items())),
            "latest_create_date": plain(_latest(status.buckets)),
        },
        "landed_last_15_minutes": status.landed_recently,
        "queue": queue,
        "verdict": asdict(status.verdict),
    }


def queue_reader(sqs: SQSClient, cloudwatch: Any, url: str) -> Callable[[datetime], QueueState]:
    return lambda now: read_queue(sqs, cloudwatch, url, now)
