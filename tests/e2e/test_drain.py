"""The drain runner against a real SQS API (moto server) and the real PostgreSQL.

Accounting is asserted exactly in every case: sent = inserted + rejected + in the DLQ + queued.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import Any

import pytest
from conftest import exercise_bodies
from login_etl import handler
from login_etl_cli.aws import queue_depth
from login_etl_cli.runner import DrainStats, drain, drain_until_settled, failed_ids
from login_etl_cli.synth import generate
from support.ledger import send
from support.pg import TestDB
from support.proxy import FaultProxy

from .conftest import LOGIN_ETL, Queue, QueueFactory, proxied_url, run_cli


def body(i: int, **overrides: Any) -> str:
    login = {
        "user_id": f"user-{i}",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": f"10.1.{i // 250}.{i % 250}",
        "locale": None,
        "device_id": f"100-00-{i:04d}",
    }
    login.update(overrides)
    return json.dumps(login)


def settled(queue: Queue, timeout_s: float = 30) -> DrainStats:
    """Drain until nothing is visible or in flight (failures retry, then DLQ); the summed stats."""
    stats, done = drain_until_settled(queue.sqs, queue.url, timeout_s=timeout_s)
    assert done, "the queue did not settle"
    return stats


def assert_accounting(db: TestDB, queue: Queue, sent: int) -> None:
    inserted, rejected = db.count("user_logins"), db.count("user_logins_rejected")
    assert sent == inserted + rejected + queue.dlq_depth() + queue.depth()


# --- the happy path ---------------------------------------------------------------------------------
def test_drain_of_the_exercise_data_inserts_99_rejects_1_and_empties_the_queue(
    lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send(queue.sqs, queue.url, exercise_bodies())

    stats = drain(queue.sqs, queue.url, batch_size=10)

    assert (stats.received, stats.succeeded, stats.failed, stats.deleted) == (100, 100, 0, 100)
    assert stats.batches == 10
    assert lambda_env.count("user_logins") == 99
    assert lambda_env.query("SELECT reason FROM user_logins_rejected") == [["missing_field"]]
    assert queue.depth() == 0
    assert queue.dlq_depth() == 0
    assert_accounting(lambda_env, queue, 100)


def test_batching_window_gathers_several_receives_into_one_invocation(
    lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send(queue.sqs, queue.url, [body(i) for i in range(45)])
    sizes: list[int] = []

    def spy(event: dict[str, Any], context: Any) -> Any:
        sizes.append(len(event["Records"]))
        return handler.lambda_handler(event, context)

    stats = drain(queue.sqs, queue.url, batch_size=100, window_s=1, handler=spy)

    assert sum(sizes) == 45
    assert max(sizes) > 10  # more than one ReceiveMessage went into a batch
    assert stats.succeeded == 45
    assert lambda_env.count("user_logins") == 45


def test_the_handler_gets_the_exact_lambda_event_shape(lambda_env: TestDB, make_queue: QueueFactory) -> None:
    queue = make_queue()
    [message_id] = send(queue.sqs, queue.url, [body(1)])
    seen: list[dict[str, Any]] = []

    def spy(event: dict[str, Any], context: Any) -> Any:
        seen.append(event)
        assert context.get_remaining_time_in_millis() > 0
        return handler.lambda_handler(event, context)

    drain(queue.sqs, queue.url, handler=spy)

    [record] = seen[0]["Records"]
    assert record["messageId"] == message_id
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":" + queue.url.rsplit("/", 1)[1])
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"].isdigit()
    assert set(record) >= {"receiptHandle", "body", "md5OfBody", "messageAttributes"}


# --- failures are left to SQS -----------------------------------------------------------------------
def test_only_successes_are_deleted_and_reported_failures_come_back(
    lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue(visibility_s=1, max_receive=5)
    ids = send(queue.sqs, queue.url, [body(i) for i in range(5)])
    failing = {ids[1], ids[3]}

    def half_failing(event: dict[str, Any], context: Any) -> Any:
        ok = [r for r in event["Records"] if r["messageId"] not in failing]
        handler.lambda_handler({"Records": ok}, context)
        return {"batchItemFailures": [{"itemIdentifier": i} for i in sorted(failing)]}

    first = drain(queue.sqs, queue.url, handler=half_failing)
    assert (first.succeeded, first.failed, first.deleted) == (3, 2, 3)
    assert queue.depth() == 2  # in flight until their visibility timeout

    settled(queue)  # the real handler this time
    assert lambda_env.count("user_logins") == 5
    assert_accounting(lambda_env, queue, 5)


def test_db_outage_during_a_drain_is_redelivered_and_lands_after_the_db_returns(
    proxied_env: tuple[TestDB, FaultProxy], make_queue: QueueFactory
) -> None:
    db, proxy = proxied_env
    queue = make_queue(visibility_s=1, max_receive=5)
    send(queue.sqs, queue.url, [body(i) for i in range(30)])
    proxy.down()

    during = drain(queue.sqs, queue.url)

    assert (during.received, during.failed, during.deleted) == (30, 30, 0)
    assert queue.depth() == 30  # nothing uncommitted was deleted
    assert db.count("user_logins") == 0
    proxy.up()

    after = settled(queue)

    assert after.failed == 0
    assert db.count("user_logins") == 30
    assert queue.dlq_depth() == 0
    assert_accounting(db, queue, 30)


def test_with_the_db_down_for_good_messages_end_in_the_dlq_after_max_receive_count(
    proxied_env: tuple[TestDB, FaultProxy], make_queue: QueueFactory
) -> None:
    db, proxy = proxied_env
    queue = make_queue(visibility_s=1, max_receive=2)
    send(queue.sqs, queue.url, [body(i) for i in range(12)])
    proxy.down()

    stats = settled(queue)

    assert stats.succeeded == 0
    assert stats.failed >= 12 * 2  # each message was tried maxReceiveCount times
    assert queue.dlq_depth() == 12
    assert queue.depth() == 0
    assert db.count("user_logins") == 0
    assert_accounting(db, queue, 12)


def test_a_raising_handler_fails_the_whole_batch(lambda_env: TestDB, make_queue: QueueFactory) -> None:
    queue = make_queue(visibility_s=30)
    send(queue.sqs, queue.url, [body(i) for i in range(4)])

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    stats = drain(queue.sqs, queue.url, handler=broken)

    assert (stats.received, stats.failed, stats.deleted) == (4, 4, 0)
    assert queue.depth() == 4


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b", "c"}),  # unknown id
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b", "c"}),
        ({"batchItemFailures": [{}]}, {"a", "b", "c"}),
        ({"batchItemFailures": "b"}, {"a", "b", "c"}),
        ("not a dict", {"a", "b", "c"}),
    ],
)
def test_partial_batch_responses_are_read_as_lambda_reads_them(response: Any, failed: set[str]) -> None:
    assert failed_ids(response, ["a", "b", "c"]) == failed


# --- duplicates versus redelivery -----------------------------------------------------------------
def test_identical_bodies_sent_twice_are_two_rows_but_a_redelivered_message_is_one(
    lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue(visibility_s=1)
    same = body(7)
    ids = send(queue.sqs, queue.url, [same, same, body(8)])

    def commit_then_lose_the_ack(event: dict[str, Any], context: Any) -> Any:
        # The function committed, then died before the mapping could delete: SQS redelivers.
        handler.lambda_handler(event, context)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    drain(queue.sqs, queue.url, handler=commit_then_lose_the_ack)
    assert lambda_env.count("user_logins") == 3
    stats = settled(queue)

    assert stats.succeeded == 3  # the redeliveries succeeded as duplicates
    assert lambda_env.count("user_logins") == 3
    assert lambda_env.count("user_logins", "user_id = 'user-7'") == 2
    for message_id in ids:
        assert lambda_env.count("user_logins", "message_id = :m", m=message_id) == 1
    assert_accounting(lambda_env, queue, 3)


def test_fifo_queue_identical_bodies_are_two_messages_and_two_rows(
    lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue(fifo=True)
    send(queue.sqs, queue.url, [body(1), body(1), body(2)])

    stats = drain(queue.sqs, queue.url)

    assert stats.succeeded == 3
    assert lambda_env.count("user_logins") == 3
    assert_accounting(lambda_env, queue, 3)


# --- the command line -------------------------------------------------------------------------------
def test_send_and_drain_commands_account_for_every_synthetic_record(
    lambda_env: TestDB, make_queue: QueueFactory, cli_env: dict[str, str], sqs_endpoint: str
) -> None:
    queue = make_queue()
    spec = generate(300, seed=11, invalid_ratio=0.1, duplicate_ratio=0.1)
    where = ["--queue-url", queue.url, "--endpoint-url", sqs_endpoint]
    synth = ["--synthetic", "300", "--seed", "11", "--invalid-ratio", "0.1", "--duplicate-ratio", "0.1"]

    sent = run_cli("send", *where, *synth, env=cli_env)
    assert sent.returncode == 0, sent.stderr
    assert "sent=300 failed=0" in sent.stderr

    drained = run_cli("drain", *where, "--batch-size", "50", "--window", "1", "--quiet", env=cli_env)
    assert drained.returncode == 0, drained.stderr
    assert "received=300 succeeded=300 failed=0 deleted=300" in drained.stderr
    assert lambda_env.count("user_logins") == spec.valid
    by_reason = dict(lambda_env.query("SELECT reason, count(*) FROM user_logins_rejected GROUP BY reason"))
    assert by_reason == dict(spec.rejected)
    assert_accounting(lambda_env, queue, 300)


def test_drain_exits_non_zero_when_a_record_failed(
    proxied_env: tuple[TestDB, FaultProxy],
    make_queue: QueueFactory,
    cli_env: dict[str, str],
    sqs_endpoint: str,
) -> None:
    db, proxy = proxied_env
    queue = make_queue(visibility_s=30)
    send(queue.sqs, queue.url, [body(i) for i in range(3)])
    proxy.down()
    env = {**cli_env, "DATABASE_URL": proxied_url(db, proxy), "DB_CONNECT_TIMEOUT": "1"}

    result = run_cli("drain", "--queue-url", queue.url, "--endpoint-url", sqs_endpoint, "--quiet", env=env)

    assert result.returncode == 1
    assert "received=3 succeeded=0 failed=3 deleted=0" in result.stderr
    assert "Traceback" not in result.stderr
    assert queue.depth() == 3


def test_sigterm_in_the_middle_of_a_drain_loses_nothing(
    lambda_env: TestDB, make_queue: QueueFactory, cli_env: dict[str, str], sqs_endpoint: str
) -> None:
    queue = make_queue(visibility_s=30)
    total = 400
    send(queue.sqs, queue.url, [body(i) for i in range(total)])
    proc = subprocess.Popen(
        [LOGIN_ETL, "drain", "--queue-url", queue.url, "--endpoint-url", sqs_endpoint, "--forever", "-q"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while lambda_env.count("user_logins") < 50:
            assert time.monotonic() < deadline, "the drain made no progress"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)  # "exit within seconds"
    finally:
        if proc.poll() is None:
            proc.kill()

    assert proc.returncode == 0, stderr
    assert "SIGTERM" in stderr
    inserted = lambda_env.count("user_logins")
    visible, in_flight = queue_depth(queue.sqs, queue.url)
    assert in_flight == 0  # the batch in hand was finished and deleted, not abandoned
    assert inserted + visible == total  # nothing lost, nothing doubled
    assert visible > 0  # it really stopped in the middle
    drain(queue.sqs, queue.url)
    assert lambda_env.count("user_logins") == total
    assert_accounting(lambda_env, queue, total)
