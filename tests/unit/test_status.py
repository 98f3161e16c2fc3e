"""The pure parts of ``login-etl status``: the verdict rules, the sparkline, the renderings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from login_etl_cli.status import (
    AGE_LIMIT_S,
    Bucket,
    QueueState,
    Status,
    Verdict,
    judge,
    render,
    sparkline,
    to_json,
)

OPERATIONS_MD = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
NOW = datetime(2026, 1, 2, 10, 30, tzinfo=UTC)


def queue(waiting: int = 0, in_flight: int = 0, age: float | None = None, dlq: int | None = 0) -> QueueState:
    return QueueState("q", waiting, in_flight, "dlq" if dlq is not None else None, dlq, age, None)


# (landed in the last 15 min, queue, expected state): one row per rule of docs/operations.md and
# each rule's boundary.
VERDICTS = [
    (50, None, "unknown"),
    (0, None, "unknown"),
    (0, queue(), "keeping up"),
    (7, queue(), "keeping up"),
    (0, queue(waiting=1), "stuck"),
    (0, queue(in_flight=3), "stuck"),
    (0, queue(waiting=5, age=AGE_LIMIT_S + 1), "stuck"),
    (10, queue(waiting=5, age=AGE_LIMIT_S + 1), "falling behind"),
    (10, queue(waiting=5, age=AGE_LIMIT_S), "keeping up"),
    (10, queue(waiting=11), "falling behind"),
    (10, queue(waiting=6, in_flight=5), "falling behind"),
    (10, queue(waiting=10), "keeping up"),
    (10, queue(waiting=4, dlq=9), "keeping up"),
]


@pytest.mark.parametrize(("landed", "q", "state"), VERDICTS)
def test_verdict_rules(landed: int, q: QueueState | None, state: str) -> None:
    assert judge(landed, q).state == state


@given(
    landed=st.integers(0, 10**6),
    waiting=st.integers(0, 10**6),
    in_flight=st.integers(0, 10**4),
    age=st.none() | st.floats(0, 10**6),
)
def test_verdict_is_always_one_of_three_with_a_queue_and_names_the_numbers(
    landed: int, waiting: int, in_flight: int, age: float | None
) -> None:
    verdict = judge(landed, queue(waiting, in_flight, age))
    assert verdict.state in {"keeping up", "falling behind", "stuck"}
    # An empty queue is never behind or stuck; a backlog with no progress is always stuck.
    if waiting + in_flight == 0:
        assert verdict.state == "keeping up"
    elif landed == 0:
        assert verdict.state == "stuck"
    assert re.search(r"\d", verdict.reason)


def test_the_rules_in_the_docs_name_the_same_thresholds() -> None:
    section = OPERATIONS_MD.read_text("utf-8").split("### The verdict", 1)[1].split("\n## ", 1)[0]
    for state in ("keeping up", "falling behind", "stuck", "unknown"):
        assert f"**{state}**" in section
    assert f"{AGE_LIMIT_S} s" in section
    assert "15 minutes" in section


@given(st.lists(st.integers(0, 10**9), max_size=60))
def test_sparkline_has_one_character_per_value_and_keeps_zero_and_nonzero_apart(values: list[int]) -> None:
    line = sparkline(values)
    assert len(line) == len(values)
    for value, char in zip(values, line, strict=True):
        assert (char == ".") == (value == 0)
    if any(values):
        assert line[values.index(max(values))] == "█"


@given(st.lists(st.integers(0, 10**9), min_size=2, max_size=60))
def test_sparkline_is_monotonic_in_the_value(values: list[int]) -> None:
    line = sparkline(values)
    order = ".▁▂▃▄▅▆▇█"
    for (a, ca), (b, cb) in zip(
        zip(values, line, strict=True), zip(values[1:], line[1:], strict=True), strict=False
    ):
        if a <= b:
            assert order.index(ca) <= order.index(cb)


def test_ascii_sparkline_uses_only_ascii() -> None:
    assert sparkline([0, 1, 5, 10], ascii_only=True).isascii()


def _status(buckets: list[Bucket], q: QueueState | None) -> Status:
    return Status(NOW, "hour", buckets, 12, q, judge(12, q))


def test_render_shows_totals_reasons_the_busy_hours_and_the_verdict() -> None:
    starts = [NOW.replace(minute=0) - timedelta(hours=i) for i in range(23, -1, -1)]
    buckets = [Bucket(s) for s in starts]
    buckets[-1] = Bucket(starts[-1], 40, {"bad_ip": 2, "not_json": 1}, date(2026, 1, 2))
    buckets[-3] = Bucket(starts[-3], 10, {}, date(2026, 1, 1))
    text = render(_status(buckets, queue(waiting=3, dlq=2)))

    assert "the last 24 hours, per hour (UTC), at 2026-01-02 10:30 UTC" in text
    assert re.search(r"inserted\s+50\s+\.{21}▂\.█", text)
    assert re.search(r"rejected\s+3\s+\.{23}█", text)
    assert re.search(r"  bad_ip\s+2\s", text) and re.search(r"  not_json\s+1\s", text)
    assert re.search(r"latest create_date\s+2026-01-02", text)
    assert re.search(
        r"2026-01-02 10:00\s+40\s+3\s+2026-01-02\n.*2026-01-02 08:00\s+10\s+0\s+2026-01-01", text
    )
    assert "queue: 3 waiting, 0 in flight" in text and "DLQ: 2" in text
    assert text.rstrip().splitlines()[-1] == (
        "verdict: keeping up: 3 messages in the queue, fewer than the 12 records landed in the last "
        "15 minutes; 2 messages in the DLQ (docs/operations.md)"
    )


def test_render_of_nothing_says_so() -> None:
    buckets = [Bucket(NOW - timedelta(days=i)) for i in range(6, -1, -1)]
    status = Status(NOW, "day", buckets, 0, None, Verdict("unknown", "x"))
    text = render(status)
    assert "nothing landed in the last 7 days" in text
    assert "queue: not read (pass --queue-url)" in text
    assert re.search(r"inserted\s+0\s+\.{7}", text)


def test_json_has_every_bucket_and_the_totals() -> None:
    starts = [NOW.replace(minute=0) - timedelta(hours=i) for i in range(2, -1, -1)]
    buckets = [Bucket(starts[0], 4, {"bad_ip": 1}, date(2026, 1, 1)), Bucket(starts[1]), Bucket(starts[2], 1)]
    data = to_json(_status(buckets, None))
    assert [b["start"] for b in data["buckets"]] == [s.isoformat() for s in starts]
    assert data["totals"] == {"inserted": 5, "rejected": {"bad_ip": 1}, "latest_create_date": "2026-01-01"}
    assert data["queue"] is None
    assert data["verdict"]["state"] == "unknown"


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_inside_operations_md_names_a_heading() -> None:
    text = OPERATIONS_MD.read_text("utf-8")
    anchors = {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "the dashboard table links the runbook"
    assert links <= anchors, links - anchors
