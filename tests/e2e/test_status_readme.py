"""The samples of ``login-etl status`` are real output, regenerated here: in full in
docs/operations.md, and a four-line excerpt (verbatim lines of the same output) in the README,
which is a front page with a line budget.

A fixed day of traffic is written to a real PostgreSQL, a real queue (moto) holds a backlog, and
its oldest-message age is published to the same API's CloudWatch; the view is then rendered with
a fixed clock, so the text is deterministic. The test fails when a block differs: after changing
the rendering, run it with ``LOGIN_ETL_UPDATE_README=1`` to rewrite both blocks, and review the
diff.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
from conftest import exercise_bodies
from login_etl_cli.sender import send_bodies
from login_etl_cli.status import collect, queue_reader, render
from support.cloudwatch import publish_oldest_message_age
from support.pg import TestDB

from .conftest import QueueFactory

README = Path(__file__).resolve().parents[2] / "README.md"
OPERATIONS = README.parent / "docs" / "operations.md"
#: The samples are fenced blocks with this info string (a marker that costs no README line).
FENCE = "```text status-sample\n"
NOW = datetime(2026, 3, 4, 14, 25, tzinfo=UTC)
#: Rows per hour, oldest first: a working day's shape, the last hour still in progress.
PER_HOUR = [310, 220, 150, 120, 110, 160, 420, 980, 1640, 2210, 2480, 2390,
            2300, 2350, 2420, 2290, 2110, 1930, 1720, 1460, 1180, 860, 610, 240]  # fmt: skip
#: (hours before the current one, reason, count)
REJECTS = [(14, "bad_app_version", 12), (13, "bad_app_version", 31), (12, "bad_app_version", 9),
           (9, "not_json", 2), (3, "missing_field", 1), (0, "bad_ip", 1)]  # fmt: skip


def _day_of_traffic(db: TestDB) -> None:
    current = NOW.replace(minute=0)
    for back, count in enumerate(reversed(PER_HOUR)):
        start = current - timedelta(hours=back)
        length = (NOW - start) if back == 0 else timedelta(hours=1)
        db.query(
            "INSERT INTO user_logins (user_id, create_date, message_id, loaded_at) "
            "SELECT 'u', CAST(t AS date), :tag || g, t FROM generate_series(0, :n - 1) g, "
            "LATERAL (SELECT CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS t) x",
            tag=f"h{back}-",
            n=count,
            start=start,
            step=length / count,
        )
    for back, reason, count in REJECTS:
        db.query(
            "INSERT INTO user_logins_rejected (message_id, reason, detail, body_encrypted, rejected_at) "
            "SELECT :tag || g, :reason, 'd', 'x', CAST(:at AS timestamptz) FROM generate_series(1, :n) g",
            tag=f"r{back}{reason}-",
            reason=reason,
            n=count,
            at=current - timedelta(hours=back) + timedelta(minutes=7),
        )
    # A row sent yesterday and delivered late still shows as landed this hour.
    assert date(2026, 3, 3) < NOW.date()


def sample(db: TestDB, make_queue: QueueFactory, endpoint: str) -> str:
    _day_of_traffic(db)
    queue = make_queue()
    send_bodies(queue.sqs, queue.url, exercise_bodies()[:37])
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")
    publish_oldest_message_age(cloudwatch, queue.url, 48.0, NOW - timedelta(minutes=1))
    status = collect(
        db.query, days=None, queue_reader=queue_reader(queue.sqs, cloudwatch, queue.url), now=NOW
    )
    return f"$ login-etl status --queue-url $Q\n{render(status)}"


def block(text: str) -> str:
    return f"{FENCE}{text}```\n"


def excerpt(text: str) -> str:
    """The README's few lines, verbatim from the full sample: the command, the two totals, the verdict."""
    keep = [
        line
        for line in text.splitlines()
        if line.startswith(("$ ", "  inserted ", "  rejected ", "verdict: "))
    ]
    return "\n".join(keep) + "\n"


def check(path: Path, expected: str) -> None:
    text = path.read_text("utf-8")
    start = text.index(FENCE)
    end = text.index("```\n", start + len(FENCE)) + len("```\n")
    if os.environ.get("LOGIN_ETL_UPDATE_README") == "1":
        path.write_text(text[:start] + expected + text[end:], "utf-8")
        return
    assert text[start:end] == expected, (
        f"the sample in {path.name} is stale: rerun with LOGIN_ETL_UPDATE_README=1"
    )


def test_the_samples_are_what_status_prints(db: TestDB, make_queue: QueueFactory, sqs_endpoint: str) -> None:
    full = sample(db, make_queue, sqs_endpoint)
    assert len(excerpt(full).splitlines()) == 4
    check(OPERATIONS, block(full))
    check(README, block(excerpt(full)))
