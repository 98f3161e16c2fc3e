"""``login-etl status`` against the real PostgreSQL: exact counts per bucket, ``loaded_at`` filled
by every insert path, and the queries answered through their indexes (EXPLAIN)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import Invoke, exercise_bodies
from login_etl_cli.status import RECENT_SQL, REJECTS_SQL, ROWS_SQL, read_database
from support.pg import TestDB

NOW = datetime(2026, 3, 4, 12, 34, 56, tzinfo=UTC)
EventFactory = Callable[..., dict[str, Any]]


def _insert_rows(db: TestDB, loaded_at: datetime | None, n: int, create_date: date, tag: str) -> None:
    db.query(
        "INSERT INTO user_logins (user_id, create_date, message_id, loaded_at) "
        "SELECT 'u', :d, :tag || g, CAST(:at AS timestamptz) FROM generate_series(1, :n) g",
        d=create_date,
        tag=tag,
        at=loaded_at,
        n=n,
    )


def _reject(db: TestDB, at: datetime, reason: str, n: int, tag: str) -> None:
    db.query(
        "INSERT INTO user_logins_rejected (message_id, reason, detail, body_encrypted, rejected_at) "
        "SELECT :tag || g, :reason, 'd', 'x', :at FROM generate_series(1, :n) g",
        tag=tag,
        reason=reason,
        at=at,
        n=n,
    )


def test_counts_per_hour_are_exact_and_the_window_is_24_hours(db: TestDB) -> None:
    _insert_rows(db, NOW - timedelta(minutes=5), 7, date(2026, 3, 4), "a")  # this hour, recent
    _insert_rows(db, NOW - timedelta(minutes=40), 3, date(2026, 3, 3), "b")  # 11:54: the 11:00 hour
    _insert_rows(db, NOW - timedelta(hours=23, minutes=30), 2, date(2026, 3, 1), "c")  # 13:04 yesterday
    _insert_rows(db, NOW - timedelta(hours=25), 100, date(2026, 3, 1), "d")  # outside the window
    _insert_rows(db, None, 50, date(2026, 3, 4), "e")  # legacy rows: load time unknown
    _insert_rows(db, NOW + timedelta(minutes=1), 9, date(2026, 3, 4), "f")  # after "now": not yet
    _reject(db, NOW - timedelta(minutes=1), "bad_ip", 2, "r1")
    _reject(db, NOW - timedelta(minutes=50), "not_json", 1, "r2")
    _reject(db, NOW - timedelta(days=2), "bad_ip", 5, "r3")

    now, unit, buckets, recent = read_database(db.query, days=None, now=NOW)

    assert (now, unit, len(buckets)) == (NOW, "hour", 24)
    assert buckets[0].start == datetime(2026, 3, 3, 13, tzinfo=UTC)
    assert buckets[-1].start == datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert [(b.inserted, b.rejected, b.latest_create_date) for b in buckets if b.inserted or b.rejected] == [
        (2, {}, date(2026, 3, 1)),
        (3, {"not_json": 1}, date(2026, 3, 3)),
        (7, {"bad_ip": 2}, date(2026, 3, 4)),
    ]
    assert recent == 7 + 2  # rows and rejects of the last 15 minutes


def test_counts_per_day(db: TestDB) -> None:
    _insert_rows(db, NOW - timedelta(hours=1), 4, date(2026, 3, 4), "a")
    _insert_rows(db, NOW - timedelta(days=2), 6, date(2026, 3, 1), "b")
    _insert_rows(db, NOW - timedelta(days=3), 8, date(2026, 3, 1), "c")  # outside 3 days
    _reject(db, NOW - timedelta(days=1), "too_long", 3, "r")

    _, unit, buckets, _ = read_database(db.query, days=3, now=NOW)

    assert unit == "day"
    assert [b.start.date() for b in buckets] == [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    assert [(b.inserted, b.rejected) for b in buckets] == [(6, {}), (0, {"too_long": 3}), (4, {})]


def test_an_empty_database_has_empty_buckets(db: TestDB) -> None:
    _, _, buckets, recent = read_database(db.query, days=None)
    assert len(buckets) == 24 and recent == 0
    assert all(b.inserted == 0 and not b.rejected and b.latest_create_date is None for b in buckets)


def test_every_insert_path_stamps_loaded_at(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    # The COPY fast path...
    invoke_handler(sqs_event(exercise_bodies()))
    # ...and the safe path (staging + INSERT ... SELECT), taken when the database refuses a row.
    lambda_env.query("ALTER TABLE user_logins ADD CONSTRAINT refuse CHECK (user_id <> 'refused')")
    body = json.loads(exercise_bodies()[0])
    bodies = [json.dumps({**body, "user_id": user}) for user in ("refused", "accepted-1", "accepted-2")]
    invoke_handler(sqs_event(bodies))

    assert lambda_env.count("user_logins") == 99 + 2
    assert lambda_env.count("user_logins", "loaded_at IS NULL") == 0
    assert lambda_env.count("user_logins", "loaded_at > now() - interval '5 minutes'") == 101
    _, _, buckets, recent = read_database(lambda_env.query, days=None)
    assert sum(b.inserted for b in buckets) == 101
    assert sum(sum(b.rejected.values()) for b in buckets) == 2  # missing_field + db_rejected
    assert recent == 103


# --- the plans ----------------------------------------------------------------------------------
@pytest.fixture
def big(db: TestDB) -> TestDB:
    """Thirty days of rows in insertion order, one every few seconds: the shape of production."""
    db.query(
        "INSERT INTO user_logins (user_id, create_date, message_id, loaded_at) "
        "SELECT 'u', CAST(t AS date), 'm' || g, t FROM generate_series(1, 300000) g, "
        "LATERAL (SELECT CAST(:start AS timestamptz) + g * interval '8.64 s' AS t) x",
        start=NOW - timedelta(days=30),
    )
    db.query(
        "INSERT INTO user_logins_rejected (message_id, reason, detail, body_encrypted, rejected_at) "
        "SELECT 'r' || g, 'bad_ip', 'ip', 'x', CAST(:start AS timestamptz) + g * interval '86.4 s' "
        "FROM generate_series(1, 30000) g",
        start=NOW - timedelta(days=30),
    )
    db.query("VACUUM ANALYZE user_logins")
    db.query("VACUUM ANALYZE user_logins_rejected")
    return db


def _plan(db: TestDB, sql: str, **params: Any) -> str:
    [[plan]] = db.query("EXPLAIN (FORMAT JSON) " + sql, **params)
    return json.dumps(plan)


def test_the_queries_are_answered_through_the_indexes(big: TestDB) -> None:
    window = {"unit": "hour", "since": NOW - timedelta(hours=23), "until": NOW}
    rows = _plan(big, ROWS_SQL, **window)
    rejects = _plan(big, REJECTS_SQL, **window)
    recent = _plan(big, RECENT_SQL, since=NOW - timedelta(minutes=15), until=NOW)

    assert "user_logins_loaded_at_brin" in rows and '"Seq Scan"' not in rows, rows
    assert "user_logins_rejected_rejected_at_idx" in rejects and '"Seq Scan"' not in rejects, rejects
    assert "user_logins_loaded_at_brin" in recent and "user_logins_rejected_rejected_at_idx" in recent
    assert '"Seq Scan"' not in recent, recent
