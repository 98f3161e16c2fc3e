"""Exact accounting for the reliability suite: every sent message ends in exactly one place.

The product's promise: a message that reaches the queue ends as exactly one row of
``user_logins``, one row of ``user_logins_rejected``, or one message in the DLQ. ``Ledger`` reads
all three (and the queue itself, and the staging table) and ``assert_exact`` checks the promise.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from login_etl_cli.aws import create_queue_with_dlq
from login_etl_cli.sender import send_bodies
from login_etl_cli.synth import generate

# --- queues -----------------------------------------------------------------------------------


def make_queues(sqs: Any, *, visibility_s: int = 2, max_receive: int = 5) -> tuple[str, str]:
    """A fresh queue with a redrive policy to a fresh DLQ; returns ``(queue_url, dlq_url)``."""
    return create_queue_with_dlq(
        sqs, "rel-" + uuid.uuid4().hex[:10], visibility_timeout_s=visibility_s, max_receive_count=max_receive
    )


def send(sqs: Any, queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send every body (the CLI's sender); return the MessageIds SQS assigned, in order."""
    result = send_bodies(sqs, queue_url, list(bodies))
    assert result.failures == [], result.failures
    return [result.message_ids[i] for i in range(len(bodies))]


def in_queue(sqs: Any, queue_url: str) -> int:
    """Visible + in flight + delayed: what the queue still holds."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def dlq_ids(sqs: Any, dlq_url: str) -> list[str]:
    """Every MessageId in the DLQ, each once; the messages stay there, visible again afterwards."""
    ids: list[str] = []
    handles: list[str] = []
    for _ in range(10_000):
        got = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            break
        ids.extend(m["MessageId"] for m in got)
        handles.extend(m["ReceiptHandle"] for m in got)
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ],
        )
    return ids


# --- synthetic data ---------------------------------------------------------------------------


def synthetic(n: int, *, invalid_ratio: float = 0.1, seed: int = 0) -> tuple[list[str], int]:
    """``n`` bodies from the CLI's generator (``login-etl send --synthetic``), ``invalid_ratio`` of
    them bad, every reject reason in turn; returns ``(bodies, how many are invalid)``."""
    made = generate(n, seed=seed, invalid_ratio=invalid_ratio)
    return made.bodies, sum(made.rejected.values())


# --- the ledger -------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Where each sent message ended, read from the database and the queues."""

    sent: list[str]
    rows: list[str]
    rejected: list[str]
    dlq: list[str]
    left_in_queue: int
    staging: int
    reasons: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(
        cls,
        query: Callable[..., list[list[Any]]],
        sqs: Any,
        queue_url: str,
        dlq_url: str,
        sent: Sequence[str],
    ) -> Ledger:
        return cls(
            sent=list(sent),
            rows=[r[0] for r in query("SELECT message_id FROM user_logins")],
            rejected=[r[0] for r in query("SELECT message_id FROM user_logins_rejected")],
            dlq=dlq_ids(sqs, dlq_url),
            left_in_queue=in_queue(sqs, queue_url),
            staging=int(query("SELECT count(*) FROM user_logins_staging")[0][0]),
            reasons=dict(query("SELECT reason, count(*) FROM user_logins_rejected GROUP BY reason")),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "sent": len(self.sent),
            "user_logins": len(self.rows),
            "user_logins_rejected": len(self.rejected),
            "dlq": len(self.dlq),
            "left_in_queue": self.left_in_queue,
            "staging": self.staging,
            "rejected_by_reason": self.reasons,
        }

    def assert_exact(self) -> None:
        """Each sent id in exactly one of rows / rejected / DLQ; nothing else anywhere; all empty."""
        sent = set(self.sent)
        assert len(sent) == len(self.sent), "SQS gave two messages the same id"
        for name, ids in (
            ("user_logins", self.rows),
            ("user_logins_rejected", self.rejected),
            ("DLQ", self.dlq),
        ):
            assert len(ids) == len(set(ids)), f"duplicates in {name}"
            stray = set(ids) - sent
            assert not stray, f"{len(stray)} ids in {name} that were never sent"
        rows, rejected, dlq = set(self.rows), set(self.rejected), set(self.dlq)
        assert not rows & rejected, f"{len(rows & rejected)} messages both inserted and rejected"
        assert not rows & dlq, f"{len(rows & dlq)} messages both inserted and dead-lettered"
        assert not rejected & dlq, f"{len(rejected & dlq)} messages both rejected and dead-lettered"
        lost = sent - rows - rejected - dlq
        assert not lost, f"{len(lost)} messages lost: {sorted(lost)[:5]}"
        assert self.left_in_queue == 0, f"{self.left_in_queue} messages left in the queue"
        assert self.staging == 0, f"{self.staging} rows left in user_logins_staging"
