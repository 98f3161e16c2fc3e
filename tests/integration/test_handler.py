"""The handler against a real PostgreSQL: what lands, what is rejected, what is retried."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Invoke, LogCapture, exercise_bodies
from login_etl import handler
from login_etl.errors import MalformedEventError, TransientStoreError
from login_etl.pii import KeyRing
from login_etl.rejected import open_body
from support.pg import TestDB
from support.proxy import FaultProxy, target_of

EventFactory = Callable[..., dict[str, Any]]


def valid_body(i: int = 0, **overrides: Any) -> str:
    body = {
        "user_id": f"user-{i}",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": f"10.0.{i // 250}.{i % 250}",
        "locale": "RU",
        "device_id": f"593-47-{i:04d}",
    }
    body.update(overrides)
    return json.dumps(body)


# --- the exercise data --------------------------------------------------------------------------
def test_exercise_batch_inserts_99_rows_and_rejects_the_malformed_one(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, logs: LogCapture
) -> None:
    response = invoke_handler(sqs_event(exercise_bodies()))

    assert response == {"batchItemFailures": []}
    db = lambda_env
    assert db.count("user_logins") == 99
    assert db.count("user_logins", "locale IS NULL") == 29
    assert db.query("SELECT reason, detail FROM user_logins_rejected") == [["missing_field", "user_id"]]
    [summary] = logs.summaries()
    assert (summary["received"], summary["inserted"], summary["duplicates"]) == (100, 99, 0)
    assert (summary["rejected"], summary["failed"]) == (1, 0)
    assert summary["rejected_by_reason"] == {"missing_field": 1}
    assert summary["function_request_id"]  # every line carries the request id


def test_exercise_versions_are_encoded_in_order(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    bodies = exercise_bodies()
    invoke_handler(sqs_event(bodies))
    stored = dict(lambda_env.query("SELECT user_id, app_version FROM user_logins"))
    sent = {b["user_id"]: b["app_version"] for b in map(json.loads, bodies) if "user_id" in b}
    assert stored["424cdd21-063a-43a7-b91b-7ca1a833afae"] == 2003000  # "2.3.0"
    for user_id, version in sent.items():
        parts = [int(p) for p in version.split(".")] + [0, 0]
        assert stored[user_id] == parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]


def test_redelivered_batch_adds_no_rows(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, logs: LogCapture
) -> None:
    event = sqs_event(exercise_bodies())
    invoke_handler(event)
    logs.clear()

    response = invoke_handler(event)

    assert response == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == 99
    assert lambda_env.count("user_logins_rejected") == 1
    [summary] = logs.summaries()
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (0, 99, 1)


def test_same_body_sent_twice_is_two_rows_with_equal_masks(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    invoke_handler(sqs_event([valid_body(7), valid_body(7)]))

    rows = lambda_env.query("SELECT masked_ip, masked_device_id, message_id FROM user_logins")
    assert len(rows) == 2
    assert rows[0][:2] == rows[1][:2]  # duplicates stay visible
    assert rows[0][2] != rows[1][2]


def test_every_masked_value_reveals_to_the_original(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, keyring: KeyRing
) -> None:
    bodies = exercise_bodies()
    invoke_handler(sqs_event(bodies))
    sent = {b["user_id"]: b for b in map(json.loads, bodies) if "user_id" in b}

    rows = lambda_env.query("SELECT user_id, masked_ip, masked_device_id FROM user_logins")
    assert len(rows) == 99
    for user_id, masked_ip, masked_device_id in rows:
        assert masked_ip.startswith("k1:") and len(masked_ip) <= 256
        assert sent[user_id]["ip"] not in masked_ip
        assert keyring.reveal(masked_ip) == ("ip", sent[user_id]["ip"])
        assert keyring.reveal(masked_device_id) == ("device_id", sent[user_id]["device_id"])


def test_no_raw_pii_in_any_log_line_or_metric(
    invoke_handler: Invoke, sqs_event: EventFactory, logs: LogCapture, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = exercise_bodies()
    invoke_handler(sqs_event(bodies))
    printed = capsys.readouterr()  # the EMF metrics blob is printed to stdout
    logged = logs.text() + printed.out + printed.err
    assert "batch summary" in logged and "RecordsInserted" in logged
    for body in map(json.loads, bodies):
        for field in ("ip", "device_id"):
            if field in body:
                assert body[field] not in logged


# --- locale ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("locale", "stored"), [(None, None), ("", None), ("PH", "PH"), ("absent", None)])
def test_locale_null_empty_or_absent_is_stored_as_null(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    sqs_event: EventFactory,
    locale: str | None,
    stored: str | None,
) -> None:
    body = json.loads(valid_body(1))
    if locale == "absent":
        del body["locale"]
    else:
        body["locale"] = locale
    invoke_handler(sqs_event([json.dumps(body)]))
    assert lambda_env.query("SELECT locale FROM user_logins") == [[stored]]


# --- every reject reason -------------------------------------------------------------------------
REJECTS = [
    ("not json", "not_json", "body is not valid JSON"),
    ("[1, 2]", "not_object", "body is a JSON array, not an object"),
    (json.dumps({"Type": "Notification", "Message": "{oops"}), "bad_envelope", "SNS Message is not JSON"),
    (
        json.dumps({"detail-type": "login", "detail": "x"}),
        "bad_envelope",
        "EventBridge detail is not an object",
    ),
    (valid_body(1, device_id=None), "missing_field", "device_id"),
    (valid_body(1, ip=""), "missing_field", "ip"),
    (valid_body(1, user_id=42), "bad_type", "user_id must be a string"),
    (valid_body(1, locale=True), "bad_type", "locale must be a string or null"),
    (valid_body(1, device_type="x" * 33), "too_long", "device_type exceeds 32 characters"),
    (valid_body(1, device_id="é" * 65), "too_long", "device_id exceeds 128 UTF-8 bytes"),
    (valid_body(1, ip="fe80::1%eth0"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
    (valid_body(1, ip=" 10.0.0.1"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
    (valid_body(1, app_version="2.x"), "bad_app_version", "app_version is not MAJOR[.MINOR[.PATCH]]"),
    (
        valid_body(1, user_id="nul\u0000inside"),
        "bad_type",
        "user_id contains NUL (U+0000), which PostgreSQL cannot store",
    ),
]


@pytest.mark.parametrize(("body", "reason", "detail"), REJECTS)
def test_each_reject_reason_is_stored_encrypted_and_acknowledged(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    sqs_event: EventFactory,
    keyring: KeyRing,
    body: str,
    reason: str,
    detail: str,
) -> None:
    event = sqs_event([body, valid_body(2)])
    response = invoke_handler(event)

    assert response == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == 1
    [[mid, got_reason, got_detail, encrypted, sent_at, arn]] = lambda_env.query(
        "SELECT message_id, reason, detail, body_encrypted, sent_at, source_arn FROM user_logins_rejected"
    )
    record = event["Records"][0]
    assert (mid, got_reason, got_detail) == (record["messageId"], reason, detail)
    assert arn == record["eventSourceARN"] and sent_at is not None
    assert body not in encrypted
    assert open_body(keyring, encrypted, record["messageId"]) == body


def test_rows_the_database_refuses_are_isolated_and_the_rest_inserted(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, logs: LogCapture
) -> None:
    # What validation cannot predict: a rule the database alone knows (here, one a DBA added).
    lambda_env.query("ALTER TABLE user_logins ADD CONSTRAINT t_refuse CHECK (user_id NOT LIKE 'refused-%')")
    bodies = [valid_body(i) for i in range(40)]
    bodies[3] = valid_body(3, user_id="refused-3")
    bodies[31] = valid_body(31, user_id="refused-31")
    event = sqs_event(bodies)

    response = invoke_handler(event)

    assert response == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == 38
    refused = {r[0] for r in lambda_env.query("SELECT message_id FROM user_logins_rejected")}
    assert refused == {event["Records"][3]["messageId"], event["Records"][31]["messageId"]}
    [summary] = logs.summaries()
    assert summary["rejected_by_reason"] == {"db_rejected": 2}
    assert (summary["inserted"], summary["rejected"], summary["failed"]) == (38, 2, 0)


# --- envelopes and FIFO ---------------------------------------------------------------------------
def test_sns_and_eventbridge_envelopes_are_unwrapped(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    sns = json.dumps({"Type": "Notification", "MessageId": "x", "Message": valid_body(1)})
    bridge = json.dumps({"detail-type": "user login", "source": "app", "detail": json.loads(valid_body(2))})
    both = json.dumps({"Type": "Notification", "Message": bridge.replace("user-2", "user-3")})

    assert invoke_handler(sqs_event([sns, bridge, both])) == {"batchItemFailures": []}

    assert sorted(r[0] for r in lambda_env.query("SELECT user_id FROM user_logins")) == [
        "user-1",
        "user-2",
        "user-3",
    ]


FIFO_ARN = "arn:aws:sqs:us-east-1:123456789012:logins.fifo"


def test_fifo_batch_inserts_valid_and_acknowledges_rejects(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    event = sqs_event([valid_body(1)], queue_arn=FIFO_ARN, group_id="g1")
    event["Records"] += sqs_event(["{bad"], queue_arn=FIFO_ARN, group_id="g1")["Records"]
    event["Records"] += sqs_event([valid_body(2)], queue_arn=FIFO_ARN, group_id="g2")["Records"]

    assert invoke_handler(event) == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == 2
    assert lambda_env.count("user_logins_rejected") == 1


# --- the database goes away -----------------------------------------------------------------------
@pytest.fixture
def proxied_env(lambda_env: TestDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestDB, FaultProxy]]:
    """``DATABASE_URL`` through a fault proxy, so the test decides when the database is down."""
    proxy = FaultProxy(target_of(lambda_env.url))
    user = urlsplit(lambda_env.url).username or "postgres"
    monkeypatch.setenv("DATABASE_URL", proxy.url_for(user, lambda_env.name))
    handler.reset()
    yield lambda_env, proxy
    handler.reset()
    proxy.close()


@pytest.mark.parametrize("fifo", [False, True])
def test_database_down_fails_every_record_writes_nothing_and_next_invocation_recovers(
    invoke_handler: Invoke,
    proxied_env: tuple[TestDB, FaultProxy],
    sqs_event: EventFactory,
    logs: LogCapture,
    fifo: bool,
) -> None:
    db, proxy = proxied_env
    kwargs: dict[str, Any] = {"queue_arn": FIFO_ARN, "group_id": "g"} if fifo else {}
    assert invoke_handler(sqs_event([valid_body(0)], **kwargs)) == {"batchItemFailures": []}
    event = sqs_event([valid_body(i) for i in range(1, 11)] + ["{bad"], **kwargs)
    logs.clear()

    proxy.down()
    with pytest.raises(TransientStoreError, match="all 11 records failed"):
        invoke_handler(event)

    assert db.count("user_logins") == 1 and db.count("user_logins_rejected") == 0
    [summary] = logs.summaries()
    assert (summary["failed"], summary["inserted"], summary["rejected"]) == (11, 0, 0)

    proxy.up()
    assert invoke_handler(event) == {"batchItemFailures": []}
    assert db.count("user_logins") == 11 and db.count("user_logins_rejected") == 1


def test_connection_dropped_mid_copy_commits_nothing_then_recovers(
    invoke_handler: Invoke, proxied_env: tuple[TestDB, FaultProxy], sqs_event: EventFactory
) -> None:
    db, proxy = proxied_env
    invoke_handler(sqs_event([valid_body(0)]))  # connection open and warm
    event = sqs_event([valid_body(i) for i in range(1, 501)])

    # Inside this batch's COPY data; then refuse the store's one reconnect, which would succeed.
    proxy.cut_after(4_000, then_refuse=True)
    with pytest.raises(TransientStoreError):
        invoke_handler(event)
    assert db.count("user_logins") == 1

    proxy.up()
    assert invoke_handler(event) == {"batchItemFailures": []}
    assert db.count("user_logins") == 501


def test_stale_connection_is_replaced_silently(
    invoke_handler: Invoke, proxied_env: tuple[TestDB, FaultProxy], sqs_event: EventFactory
) -> None:
    db, proxy = proxied_env
    invoke_handler(sqs_event([valid_body(0)]))
    proxy.down()  # resets the open connection, as a NAT or server idle timeout would
    proxy.up()

    assert invoke_handler(sqs_event([valid_body(1)])) == {"batchItemFailures": []}
    assert db.count("user_logins") == 2
    assert proxy.connections == 2


# --- malformed events -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "event",
    [{}, {"Records": "x"}, {"Records": [{"body": "{}"}]}, {"Records": [{"messageId": "", "body": "{}"}]}],
)
def test_an_event_that_is_not_an_sqs_event_is_a_clear_error(
    invoke_handler: Invoke, lambda_env: TestDB, event: dict[str, Any]
) -> None:
    with pytest.raises(MalformedEventError):
        invoke_handler(event)
    assert lambda_env.count("user_logins") == 0


def test_an_empty_batch_is_a_no_op(invoke_handler: Invoke, lambda_env: TestDB) -> None:
    assert invoke_handler({"Records": []}) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "PII_KEYS (or PII_KEYS_SECRET_ARN) is not set"),
        ("k1:c2hvcnQ=", "PII key 'k1' is 5 bytes; AES-SIV keys here are 32 or 64 random bytes"),
    ],
)
def test_missing_or_short_key_is_a_clear_startup_error(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    sqs_event: EventFactory,
    logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
    keys: str,
    message: str,
) -> None:
    from login_etl.errors import ConfigError

    monkeypatch.setenv("PII_KEYS", keys)
    handler.reset()
    with pytest.raises(ConfigError, match=re.escape(message)):
        invoke_handler(sqs_event([valid_body(1)]))
    assert [x["error"] for x in logs.lines() if x["message"] == "configuration error"] == [message]
    assert lambda_env.count("user_logins") == 0


def test_a_concurrent_writer_of_the_same_message_wins_the_race_without_a_second_row(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, logs: LogCapture
) -> None:
    """Two drainers with the same message (its visibility timeout expired): the other one's insert
    is uncommitted when our lookup runs, so our COPY hits the unique index, waits, then fails with
    a unique violation once it commits. The batch must fall back to ON CONFLICT, not reject rows."""
    import threading
    import time

    from support.pg import connect

    event = sqs_event([valid_body(i) for i in range(20)])
    contested = event["Records"][7]["messageId"]
    other = connect(lambda_env.url)
    other.run("BEGIN")
    other.run("INSERT INTO user_logins (user_id, message_id) VALUES ('other-drainer', :m)", m=contested)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(response=invoke_handler(event)))
    worker.start()
    deadline = time.monotonic() + 10
    waiting: list[list[Any]] = []
    while time.monotonic() < deadline and not waiting:
        waiting = lambda_env.query(
            "SELECT 1 FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND query LIKE 'COPY user_logins %'"
        )
        time.sleep(0.05)
    assert waiting, "our COPY never waited on the other writer's row: the race was not staged"
    other.run("COMMIT")
    other.close()
    worker.join(timeout=30)

    assert result["response"] == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == 20
    assert lambda_env.count("user_logins", "message_id = :m", m=contested) == 1
    assert lambda_env.count("user_logins_rejected") == 0
    [summary] = logs.summaries()
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (19, 1, 0)


def test_copy_special_characters_are_stored_exactly_never_as_null(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    """COPY text gives backslash, tab, newline and CR meaning, and ``\\N`` means NULL."""
    tricky = {"user_id": "a\\b\tc\nd\re", "device_type": "\\N", "locale": "\\N"}
    invoke_handler(sqs_event([valid_body(1, **tricky), valid_body(2)]))

    rows = lambda_env.query("SELECT user_id, device_type, locale FROM user_logins ORDER BY user_id")
    assert rows == [["a\\b\tc\nd\re", "\\N", "\\N"], ["user-2", "android", "RU"]]


def test_database_down_at_the_first_batch_is_one_clear_line_and_the_batch_raises(
    invoke_handler: Invoke, proxied_env: tuple[TestDB, FaultProxy], sqs_event: EventFactory, logs: LogCapture
) -> None:
    db, proxy = proxied_env
    proxy.down()
    with pytest.raises(TransientStoreError):
        invoke_handler(sqs_event([valid_body(1)]))
    [line] = [x for x in logs.lines() if x["message"] == "startup failed"]
    # The exception type depends on when the reset lands (refused, broken pipe, ...).
    assert re.fullmatch(r"database connection failed \(\w+\)", line["error"])

    proxy.up()
    assert invoke_handler(sqs_event([valid_body(1)])) == {"batchItemFailures": []}
    assert db.count("user_logins") == 1
