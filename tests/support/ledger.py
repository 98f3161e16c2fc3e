"""Exact accounting for the reliability suite: every sent message ends in exactly one place.

The product's promise: a message that reaches the queue ends as exactly one row of
``user_logins``, one row of ``user_logins_rejected``, or one message in the DLQ. ``Ledger`` reads
all three (and the queue itself, and the staging table) and ``assert_exact`` checks the promise.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- queues -----------------------------------------------------------------------------------


def make_queues(sqs: Any, *, visibility_s: int = 2, max_receive: int = 5) -> tuple[str, str]:
    """A fresh queue with a redrive policy to a fresh DLQ; returns ``(queue_url, dlq_url)``."""
    name = "rel-" + uuid.uuid4().hex[:10]
    dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def send(sqs: Any, queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send ``bodies`` 10 per call; return the MessageIds SQS assigned, in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        out = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
        )
        assert not out.get("Failed"), out.get("Failed")
        by_entry = {int(e["Id"]): e["MessageId"] for e in out["Successful"]}
        ids.extend(by_entry[i] for i in range(len(chunk)))
    return ids


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


def settle(
    run_once: Callable[[], Any], sqs: Any, queue_url: str, *, timeout_s: float = 60.0, pause_s: float = 0.5
) -> int:
    """Call ``run_once`` (one ``drain(until_empty=True)``) until the queue holds nothing.

    Failed messages are invisible until their visibility timeout expires, so one drain that finds
    the queue "empty" is not the end. Bounded in time; returns how many drains it took.
    """
    deadline = time.monotonic() + timeout_s
    rounds = 0
    while True:
        run_once()
        rounds += 1
        if in_queue(sqs, queue_url) == 0:
            return rounds
        if time.monotonic() > deadline:
            raise AssertionError(f"the queue did not settle within {timeout_s} s ({rounds} drains)")
        time.sleep(pause_s)


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


def valid_body(i: int, rng: random.Random | None = None) -> str:
    """A valid login whose ip and device_id are unique to ``i`` (so the PII guard can find them)."""
    r = rng or random.Random(i)
    return json.dumps(
        {
            "user_id": f"u-{i:07d}-{uuid.UUID(int=r.getrandbits(128))}",
            "app_version": r.choice(["2.3.0", "0.96", "v1.2.3", "4", "3.7.12-beta"]),
            "device_type": r.choice(["android", "ios", "web"]),
            "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
            if i % 5
            else f"2001:db8::{i >> 16:x}:{i & 0xFFFF:x}:{r.randrange(1, 65535):x}",
            "locale": r.choice(["RU", "PH", None, "US", ""]),
            "device_id": f"{r.randrange(100, 999)}-{r.randrange(10, 99)}-{i:07d}",
        }
    )


_INVALID = (
    lambda i: "not json {" + str(i),
    lambda i: json.dumps([i, "array"]),
    lambda i: json.dumps({"user_id": f"u{i}", "device_type": "ios"}),  # missing fields
    lambda i: valid_body(i).replace('"app_version": "', '"app_version": "x'),
    lambda i: json.dumps({**json.loads(valid_body(i)), "ip": f"300.1.1.{i % 250}"}),
    lambda i: json.dumps({**json.loads(valid_body(i)), "user_id": 12345}),
    lambda i: json.dumps({**json.loads(valid_body(i)), "device_type": "x" * 40}),
    lambda i: json.dumps({**json.loads(valid_body(i)), "user_id": f"nul\u0000{i}"}),  # bad_type
)


def synthetic(n: int, *, invalid_ratio: float = 0.1, seed: int = 0) -> tuple[list[str], int]:
    """``n`` bodies, ``invalid_ratio`` of them bad in assorted ways; returns (bodies, n_invalid)."""
    rng = random.Random(seed)
    bodies: list[str] = []
    invalid = 0
    for i in range(n):
        if rng.random() < invalid_ratio:
            bodies.append(_INVALID[invalid % len(_INVALID)](i))
            invalid += 1
        else:
            bodies.append(valid_body(i, rng))
    return bodies, invalid


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
