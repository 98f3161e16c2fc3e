"""Hostile input: a corpus of nasty bodies and events, then Hypothesis over generated ones.

The handler never raises for a bad record: each is rejected with a stable reason code and kept
encrypted, and the good records of the same batch are inserted. Only an event that is not an SQS
event (no Records list, a record that is not an object or has no usable messageId) is refused
whole, with ``MalformedEventError``.
"""

# ruff: noqa: RUF001 - look-alike digits and letters are the point of the corpus
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Invoke, LogCapture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from login_etl.constants import Reason
from login_etl.errors import MalformedEventError, RecordRejectedError
from login_etl.pii import KeyRing
from login_etl.records import parse_login
from login_etl.rejected import open_body
from support.pg import TestDB

EventFactory = Callable[..., dict[str, Any]]
REASONS = {r.value for r in Reason}
INSERTED = "inserted"

BASE = {
    "user_id": "hostile-user",
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": "192.0.2.77",
    "locale": "RU",
    "device_id": "771-22-9090",
}


def body(**overrides: Any) -> str:
    return json.dumps({**BASE, **overrides})


def raw(text: str) -> str:
    return text


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


SQL = "'); DROP TABLE user_logins; --"

# (case id, body, what must happen: a reason code or INSERTED)
CORPUS: list[tuple[str, str, str]] = [
    ("not json", raw("not json at all"), "not_json"),
    ("empty body", raw(""), "not_json"),
    ("truncated json", raw('{"user_id": "x"'), "not_json"),
    ("json array", raw('[{"user_id": "x"}]'), "not_object"),
    ("json number", raw("42"), "not_object"),
    ("json string", raw('"a string"'), "not_object"),
    ("json null", raw("null"), "not_object"),
    ("json true", raw("true"), "not_object"),
    ("nested 100k deep", raw(_nested(100_000)), "not_json"),
    ("deep unknown key", body(extra=json.loads(_nested(500))), INSERTED),
    ("256 KiB body, padding ignored", body(padding="x" * (256 * 1024 - 300)), INSERTED),
    ("256 KiB user_id", body(user_id="u" * 256 * 1024), "too_long"),
    ("NUL in user_id", body(user_id="a\u0000b"), "bad_type"),
    ("NUL in device_type", body(device_type="ios\u0000"), "bad_type"),
    ("NUL in locale", body(locale="\u0000"), "bad_type"),
    ("NUL in ip", body(ip="1.2.3.4\u0000"), "bad_ip"),
    ("NUL in device_id (masked, so stored)", body(device_id="dev\u0000ice-1234"), INSERTED),
    ("NUL in app_version", body(app_version="2.3\u0000"), "bad_app_version"),
    ("control chars kept verbatim", body(user_id="\x01\x02\x1b[31m\x7f\t\n\r", device_type="\x1f"), INSERTED),
    ("lone surrogate in user_id", raw(body().replace("hostile-user", "\\ud800x")), "bad_type"),
    ("lone surrogate in device_id", raw(body().replace("771-22-9090", "\\udfff")), "bad_type"),
    ("lone surrogate in locale", raw(body().replace('"RU"', '"\\ud83d"')), "bad_type"),
    ("lone surrogate in ip", raw(body().replace("192.0.2.77", "\\ud800")), "bad_ip"),
    ("lone surrogate in app_version", raw(body().replace('"2.3.0"', '"\\ud800"')), "bad_app_version"),
    ("invalid utf-8 escaped pair order", raw(body().replace("hostile-user", "\\udc00\\ud800")), "bad_type"),
    ("user_id 129 chars", body(user_id="u" * 129), "too_long"),
    ("user_id 128 chars", body(user_id="u" * 128), INSERTED),
    ("device_type 33 chars", body(device_type="d" * 33), "too_long"),
    ("locale 33 chars", body(locale="l" * 33), "too_long"),
    ("device_id 129 bytes", body(device_id="9" * 129), "too_long"),
    ("device_id 32 emoji = 128 bytes", body(device_id="😀" * 32), INSERTED),
    ("device_id 33 emoji", body(device_id="😀" * 33), "too_long"),
    ("ip 46 chars", body(ip="1" * 46), "bad_ip"),
    ("app_version 10k chars", body(app_version="1." * 5000), "bad_app_version"),
    ("user_id number", body(user_id=12345), "bad_type"),
    ("user_id float", body(user_id=1.5), "bad_type"),
    ("device_type boolean", body(device_type=True), "bad_type"),
    ("ip object", body(ip={"v4": "1.2.3.4"}), "bad_type"),
    ("device_id array", body(device_id=["a"]), "bad_type"),
    ("app_version number", body(app_version=2.3), "bad_type"),
    ("locale number", body(locale=7), "bad_type"),
    ("locale object", body(locale={"x": 1}), "bad_type"),
    ("user_id false (not missing)", body(user_id=False), "bad_type"),
    ("user_id zero (not missing)", body(user_id=0), "bad_type"),
    ("user_id null", body(user_id=None), "missing_field"),
    ("ip empty", body(ip=""), "missing_field"),
    ("ip with zone", body(ip="fe80::1%eth0"), "bad_ip"),
    ("ip with zone number", body(ip="fe80::1%1"), "bad_ip"),
    ("ip leading space", body(ip=" 10.0.0.1"), "bad_ip"),
    ("ip trailing space", body(ip="10.0.0.1 "), "bad_ip"),
    ("ip inner space", body(ip="10.0. 0.1"), "bad_ip"),
    ("ip with newline", body(ip="10.0.0.1\n"), "bad_ip"),
    ("ip three octets", body(ip="10.0.1"), "bad_ip"),
    ("ip octet 256", body(ip="10.0.0.256"), "bad_ip"),
    ("ip leading zeros", body(ip="010.0.0.1"), "bad_ip"),
    ("ip cidr", body(ip="10.0.0.0/8"), "bad_ip"),
    ("ip hostname", body(ip="localhost"), "bad_ip"),
    ("ip arabic-indic digits", body(ip="١٠.٠.٠.١"), "bad_ip"),
    ("ip fullwidth digits", body(ip="１０.０.０.１"), "bad_ip"),
    ("ipv6 full", body(ip="2001:0db8:0000:0000:0000:ff00:0042:8329"), INSERTED),
    ("ipv4-mapped ipv6", body(ip="::ffff:198.51.100.7"), INSERTED),
    ("sql injection in user_id", body(user_id=SQL), INSERTED),
    ("sql injection in locale", body(locale="'; --"), INSERTED),
    ("sql injection in ip", body(ip="1.2.3.4'; DROP TABLE x; --"), "bad_ip"),
    ("sql injection in app_version", body(app_version="1'; --"), "bad_app_version"),
    ("copy escapes in user_id", body(user_id="tab\there\\N\\.\nnl\\\\"), INSERTED),
    (
        "unicode everywhere",
        body(user_id="用户-ü-😀", device_type="安卓", locale="ру", device_id="設備-😀-٣"),
        INSERTED,
    ),
    ("unicode app_version digits", body(app_version="２.３.０"), "bad_app_version"),
    ("RTL override in user_id", body(user_id="\u202eevil\u202c"), INSERTED),
    ("SNS Message is a number", raw(json.dumps({"Type": "Notification", "Message": 5})), "bad_envelope"),
    ("SNS Message is an array", raw(json.dumps({"Type": "Notification", "Message": "[1]"})), "bad_envelope"),
    ("EventBridge detail is a list", raw(json.dumps({"detail-type": "x", "detail": [1]})), "bad_envelope"),
    (
        "SNS wrapping a hostile body",
        raw(json.dumps({"Type": "Notification", "Message": body(ip="x")})),
        "bad_ip",
    ),
    ("duplicate keys, last wins", raw(body()[:-1] + ', "ip": "bogus"}'), "bad_ip"),
    ("huge number as app_version", raw(body().replace('"2.3.0"', "1" * 5000)), "bad_type"),
    ("huge number in an unknown field", raw(body()[:-1] + ', "n": ' + "9" * 5000 + "}"), INSERTED),
    (
        "SNS Message nested 100k deep",
        raw(json.dumps({"Type": "Notification", "Message": _nested(100_000)})),
        "bad_envelope",
    ),
]


def test_the_hostile_corpus_is_rejected_with_stable_reasons_and_never_raises(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    sqs_event: EventFactory,
    keyring: KeyRing,
    logs: LogCapture,
) -> None:
    bodies = [case[1] for case in CORPUS] + [body(user_id="the-good-one")]
    event = sqs_event(bodies)

    response = invoke_handler(event)

    assert response == {"batchItemFailures": []}
    rejected = {
        mid: (reason, encrypted)
        for mid, reason, encrypted in lambda_env.query(
            "SELECT message_id, reason, body_encrypted FROM user_logins_rejected"
        )
    }
    inserted = {r[0] for r in lambda_env.query("SELECT message_id FROM user_logins")}
    wrong = []
    for (name, sent, expected), record in zip(CORPUS, event["Records"], strict=False):
        mid = record["messageId"]
        got = INSERTED if mid in inserted else rejected.get(mid, ("nowhere", ""))[0]
        if got != expected:
            wrong.append(f"{name}: expected {expected}, got {got}")
        if mid in rejected:  # the raw body is kept, encrypted, byte-exact for replay
            assert open_body(keyring, rejected[mid][1], mid) == sent
    assert not wrong, "\n".join(wrong)
    assert event["Records"][-1]["messageId"] in inserted
    assert len(inserted) + len(rejected) == len(bodies)
    [summary] = logs.summaries()
    assert summary["received"] == len(bodies)
    assert summary["inserted"] + summary["rejected"] == len(bodies)
    assert set(summary["rejected_by_reason"]) <= REASONS
    # The injection landed as data, and the table is still there.
    assert lambda_env.query("SELECT count(*) FROM user_logins WHERE user_id = :u", u=SQL) == [[1]]
    stored = dict(lambda_env.query("SELECT message_id, user_id FROM user_logins"))
    by_name = {name: rec["messageId"] for (name, _, _), rec in zip(CORPUS, event["Records"], strict=False)}
    assert stored[by_name["control chars kept verbatim"]] == "\x01\x02\x1b[31m\x7f\t\n\r"
    assert stored[by_name["copy escapes in user_id"]] == "tab\there\\N\\.\nnl\\\\"


def test_a_record_without_attributes_falls_back_to_the_processing_date(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory
) -> None:
    event = sqs_event([body()])
    del event["Records"][0]["attributes"]
    today = datetime.now(UTC).date()
    assert invoke_handler(event) == {"batchItemFailures": []}
    [[stored]] = lambda_env.query("SELECT create_date FROM user_logins")
    assert stored in (today, datetime.now(UTC).date())


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "Records",
        {"records": []},
        {"Records": None},
        {"Records": {"0": {}}},
        {"Records": [None]},
        {"Records": ["a string"]},
        {"Records": [{"body": body()}]},
        {"Records": [{"messageId": None, "body": body()}]},
        {"Records": [{"messageId": 7, "body": body()}]},
        {"Records": [{"messageId": "x" * 129, "body": body()}]},
        {"Records": [{"messageId": "ünïcode", "body": body()}]},
        {"Records": [{"messageId": "line\nbreak", "body": body()}]},
    ],
    ids=lambda e: repr(e)[:40],
)
def test_an_event_that_is_not_an_sqs_event_is_refused_whole_with_a_clear_error(
    invoke_handler: Invoke, lambda_env: TestDB, event: Any
) -> None:
    with pytest.raises(MalformedEventError) as caught:
        invoke_handler(event)
    message = str(caught.value)
    assert "SQS event" in message or "messageId" in message or "not an object" in message
    assert lambda_env.count("user_logins") == 0 and lambda_env.count("user_logins_rejected") == 0


# --- Hypothesis ------------------------------------------------------------------------------------
FIELDS = ["user_id", "device_type", "ip", "device_id", "app_version", "locale"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=60),
    st.sampled_from(["", "1.2.3.4", "::1", "fe80::1%eth0", "2.3.0", "v1", "\u0000", "1.2.3.4 "]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
login_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
    lambda partial: {**{k: v for k, v in BASE.items() if k not in partial and len(partial) < 3}, **partial}
)


def _dump(obj: Any) -> str:
    return json.dumps(obj)


bodies = st.one_of(
    st.text(max_size=200),
    json_values.map(_dump),
    login_like.map(_dump),
    login_like.map(lambda o: _dump({"Type": "Notification", "Message": _dump(o)})),
    login_like.map(lambda o: _dump({"detail-type": "login", "detail": o})),
)


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_any_body_parses_or_is_rejected_with_a_known_reason(text: str) -> None:
    try:
        parse_login(text)
    except RecordRejectedError as err:
        assert err.reason in REASONS
        assert err.reason != "db_rejected"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decoded_leniently_parse_or_are_rejected(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")  # lone surrogates, as a broken producer sends
    try:
        parse_login(text)
    except RecordRejectedError as err:
        assert err.reason in REASONS


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(bodies, min_size=1, max_size=12))
def test_any_batch_through_the_handler_is_accounted_for_exactly(
    invoke_handler: Invoke, lambda_env: TestDB, sqs_event: EventFactory, batch: list[str]
) -> None:
    event = sqs_event(batch, message_id=None)
    for record in event["Records"]:
        record["messageId"] = str(uuid.uuid4())
    response = invoke_handler(event)
    assert response == {"batchItemFailures": []}
    ids = [r["messageId"] for r in event["Records"]]
    where = "WHERE message_id = ANY(CAST(:ids AS varchar[]))"
    landed = lambda_env.query(
        f"SELECT message_id FROM user_logins {where} "
        f"UNION ALL SELECT message_id FROM user_logins_rejected {where}",
        ids=ids,
    )
    assert sorted(r[0] for r in landed) == sorted(ids)  # each exactly once, in exactly one table
    reasons = lambda_env.query(
        "SELECT DISTINCT reason FROM user_logins_rejected WHERE message_id = ANY(CAST(:ids AS varchar[]))",
        ids=ids,
    )
    assert {r[0] for r in reasons} <= REASONS


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"Records": st.lists(json_values, max_size=3)}),
        st.fixed_dictionaries(
            {
                "Records": st.lists(
                    st.dictionaries(st.sampled_from(["body", "messageId"]), json_values), max_size=3
                )
            }
        ),
    )
)
def test_any_non_sqs_event_is_refused_or_processed_never_crashes(event: Any) -> None:
    from login_etl.batch import check_event

    try:
        records = check_event(event)
    except MalformedEventError:
        return
    for record in records:
        assert isinstance(record["messageId"], str) and record["messageId"]
