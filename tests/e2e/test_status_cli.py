"""``login-etl status`` as a user runs it: on the demo's database, on an empty one, with a queue
that is stuck or behind, as a role that may read only the non-PII columns, and ``--json``."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from conftest import exercise_bodies
from login_etl_cli.runner import drain
from login_etl_cli.sender import send_bodies
from support.cloudwatch import publish_oldest_message_age
from support.pg import TestDB, connect

from .conftest import QueueFactory, run_cli


def _status_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("status", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_status_on_the_demos_database_counts_what_the_demo_landed(
    cli_env: dict[str, str], sqs_endpoint: str, make_queue: QueueFactory
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "PII_KEYS"}
    demo = run_cli("demo", env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    # The demo ends with the status view of its own database and queue.
    tail = demo.stdout[demo.stdout.index("What `login-etl status") :]
    assert re.search(r"inserted +99 ", tail) and re.search(r"missing_field +1 ", tail)
    assert (
        tail.rstrip()
        .splitlines()[-1]
        .startswith("verdict: keeping up: the queue is empty; 100 records landed")
    )

    data = _status_json(env=env)
    today = datetime.now(UTC).date().isoformat()
    assert data["totals"] == {"inserted": 99, "rejected": {"missing_field": 1}, "latest_create_date": today}
    assert data["unit"] == "hour" and len(data["buckets"]) == 24
    assert sum(b["inserted"] for b in data["buckets"]) == 99
    assert data["landed_last_15_minutes"] == 100
    assert data["queue"] is None and data["verdict"]["state"] == "unknown"

    queue = make_queue()
    with_queue = _status_json("--queue-url", queue.url, "--endpoint-url", sqs_endpoint, env=env)
    assert with_queue["queue"]["backlog"] == 0 and with_queue["queue"]["dlq_waiting"] == 0
    assert with_queue["queue"]["dlq_url"] == queue.dlq_url
    assert with_queue["verdict"]["state"] == "keeping up"

    text = run_cli("status", "--days", "3", env=env)
    assert text.returncode == 0, text.stderr
    assert "the last 3 days, per day (UTC)" in text.stdout
    assert f"{today}  99" in text.stdout


def test_status_on_an_empty_database(cli_env: dict[str, str]) -> None:
    data = _status_json(env=cli_env)
    assert data["totals"] == {"inserted": 0, "rejected": {}, "latest_create_date": None}
    assert len(data["buckets"]) == 24
    assert all(b["inserted"] == 0 and b["rejected"] == {} for b in data["buckets"])
    assert data["landed_last_15_minutes"] == 0

    text = run_cli("status", "--days", "7", env=cli_env)
    assert text.returncode == 0, text.stderr
    assert "nothing landed in the last 7 days" in text.stdout
    assert text.stdout.rstrip().splitlines()[-1].startswith("verdict: unknown: 0 records landed")


def test_a_backlog_with_nothing_landing_is_stuck(
    cli_env: dict[str, str], sqs_endpoint: str, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send_bodies(queue.sqs, queue.url, exercise_bodies()[:7])

    data = _status_json("--queue-url", queue.url, "--endpoint-url", sqs_endpoint, env=cli_env)

    assert (data["queue"]["waiting"], data["queue"]["in_flight"]) == (7, 0)
    assert data["queue"]["oldest_age_s"] is None
    assert data["queue"]["age_note"] == "no CloudWatch datapoint in the last 15 minutes"
    assert data["verdict"]["state"] == "stuck"
    assert queue.depth() == 7  # status received nothing: every message is still there, visible


def test_an_old_oldest_message_is_falling_behind_and_the_dlq_is_reported(
    cli_env: dict[str, str], lambda_env: TestDB, sqs_endpoint: str, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send_bodies(queue.sqs, queue.url, exercise_bodies()[:20])
    drain(queue.sqs, queue.url, batch_size=10)  # progress: 20 landed
    send_bodies(queue.sqs, queue.url, exercise_bodies()[20:25])  # a backlog smaller than that
    send_bodies(queue.sqs, queue.dlq_url, exercise_bodies()[25:27])
    # What AWS publishes for a queue whose oldest message has waited 15 minutes.
    cloudwatch = boto3.client("cloudwatch", endpoint_url=sqs_endpoint, region_name="us-east-1")
    publish_oldest_message_age(cloudwatch, queue.url, 900.0, datetime.now(UTC) - timedelta(minutes=2))
    args = ("--queue-url", queue.url, "--endpoint-url", sqs_endpoint)

    data = _status_json(*args, env=cli_env)

    assert data["landed_last_15_minutes"] == 20
    assert data["queue"]["oldest_age_s"] == 900.0 and data["queue"]["backlog"] == 5
    assert data["queue"]["dlq_waiting"] == 2
    assert data["verdict"] == {
        "state": "falling behind",
        "reason": "the oldest message is 900 s old (limit 600 s)",
    }
    text = run_cli("status", *args, env=cli_env).stdout
    assert "oldest message: 900 s; DLQ: 2" in text
    assert text.rstrip().endswith("2 messages in the DLQ (docs/operations.md)")


@pytest.fixture
def narrow_role(lambda_env: TestDB) -> Iterator[str]:
    """A database role that may read exactly the four columns status needs, and nothing else."""
    role = "status_" + uuid.uuid4().hex[:8]
    lambda_env.query(f"CREATE ROLE {role} LOGIN PASSWORD 'status-test'")
    for grant in (
        f'GRANT CONNECT ON DATABASE "{lambda_env.name}" TO {role}',
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT (loaded_at, create_date) ON user_logins TO {role}",
        f"GRANT SELECT (rejected_at, reason) ON user_logins_rejected TO {role}",
    ):
        lambda_env.query(grant)
    parts = urlsplit(lambda_env.url)
    netloc = f"{role}:status-test@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    try:
        yield urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    finally:
        lambda_env.query(f"DROP OWNED BY {role}")
        lambda_env.query(f'REVOKE ALL ON DATABASE "{lambda_env.name}" FROM {role}')
        lambda_env.query(f"DROP ROLE {role}")


def test_status_needs_no_pii_column(
    cli_env: dict[str, str], lambda_env: TestDB, narrow_role: str, sqs_endpoint: str, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send_bodies(queue.sqs, queue.url, exercise_bodies())
    drain(queue.sqs, queue.url, batch_size=10)
    # The grant really is narrow: the role cannot read a masked column.
    reader = connect(narrow_role)
    try:
        with pytest.raises(Exception, match="permission denied"):
            reader.run("SELECT masked_ip FROM user_logins LIMIT 1")
    finally:
        reader.close()

    data = _status_json(env={**cli_env, "DATABASE_URL": narrow_role})

    assert data["totals"]["inserted"] == 99 and data["totals"]["rejected"] == {"missing_field": 1}


def test_endpoint_without_a_queue_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = run_cli("status", "--endpoint-url", "http://127.0.0.1:1", env=cli_env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --endpoint-url goes with --queue-url"
