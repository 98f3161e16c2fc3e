"""Validation of one message body: every reason code, envelopes, and what is never changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from login_etl.errors import RecordRejectedError
from login_etl.records import Login, parse_login

GOOD: dict[str, Any] = {
    "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": "199.172.111.135",
    "locale": "RU",
    "device_id": "593-47-5928",
}


def body(**changes: Any) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def reason_of(text: object) -> tuple[str, str]:
    with pytest.raises(RecordRejectedError) as info:
        parse_login(text)
    return info.value.reason, info.value.detail


def test_valid_body_parses_exactly() -> None:
    assert parse_login(body()) == Login(
        "424cdd21-063a-43a7-b91b-7ca1a833afae", "android", "199.172.111.135", "593-47-5928", "RU", 2_003_000
    )


def test_nothing_is_trimmed_and_unknown_keys_are_ignored() -> None:
    login = parse_login(body(user_id=" u ", device_type="ios ", extra={"x": 1}))
    assert (login.user_id, login.device_type) == (" u ", "ios ")
    assert not hasattr(login, "extra")


@pytest.mark.parametrize(
    ("text", "reason", "detail"),
    [
        ("", "not_json", "body is not valid JSON"),
        ("{", "not_json", "body is not valid JSON"),
        (None, "not_json", "body is missing or not a string"),
        ("[]", "not_object", "body is a JSON array, not an object"),
        ("42", "not_object", "body is a JSON number, not an object"),
        ("null", "not_object", "body is a JSON null, not an object"),
        (json.dumps({"Type": "Notification", "Message": 5}), "bad_envelope", "SNS Message is not a string"),
        (
            json.dumps({"Type": "Notification", "Message": "[1]"}),
            "bad_envelope",
            "SNS Message is not a JSON object",
        ),
        (json.dumps({"detail-type": "x"}), "bad_envelope", "EventBridge detail is not an object"),
        (body(user_id=...), "missing_field", "user_id"),
        (body(device_type=None), "missing_field", "device_type"),
        (body(app_version=""), "missing_field", "app_version"),
        (body(ip=1234), "bad_type", "ip must be a string"),
        (body(device_id=False), "bad_type", "device_id must be a string"),
        (body(app_version=2.3), "bad_type", "app_version must be a string"),
        (body(user_id={"a": 1}), "bad_type", "user_id must be a string"),
        (body(locale=["RU"]), "bad_type", "locale must be a string or null"),
        (body(user_id="\ud800"), "bad_type", "user_id is not valid Unicode text"),
        (body(user_id="u" * 129), "too_long", "user_id exceeds 128 characters"),
        (body(device_type="d" * 33), "too_long", "device_type exceeds 32 characters"),
        (body(locale="l" * 33), "too_long", "locale exceeds 32 characters"),
        (body(device_id="€" * 43), "too_long", "device_id exceeds 128 UTF-8 bytes"),
        (body(ip="300.1.1.1"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
        (body(ip="1.2.3.4 "), "bad_ip", "ip is not an IPv4 or IPv6 address"),
        (body(ip="fe80::1%eth0"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
        (body(ip="01.2.3.4"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
        (body(ip="1.2.3.4\u0000"), "bad_ip", "ip is not an IPv4 or IPv6 address"),
        (body(app_version="2.3.0.1"), "bad_app_version", "app_version is not MAJOR[.MINOR[.PATCH]]"),
    ],
)
def test_each_problem_has_its_stable_reason(text: object, reason: str, detail: str) -> None:
    assert reason_of(text) == (reason, detail)


def test_the_exercise_malformed_body_is_a_missing_field() -> None:
    assert reason_of('{"foo": "oops_wrong_msg_type", "bar": "123"}') == ("missing_field", "user_id")


@pytest.mark.parametrize(
    ("limit_field", "value"),
    [("user_id", "ü" * 128), ("device_type", "d" * 32), ("locale", "l" * 32), ("device_id", "€" * 42 + "ab")],
)
def test_values_at_the_limit_are_accepted(limit_field: str, value: str) -> None:
    assert getattr(parse_login(body(**{limit_field: value})), limit_field) == value


@pytest.mark.parametrize("ip", ["::1", "2001:db8::8a2e:370:7334", "0.0.0.0", "::ffff:192.0.2.1"])
def test_ipv6_and_edge_ipv4_are_accepted(ip: str) -> None:
    assert parse_login(body(ip=ip)).ip == ip


def test_detail_never_contains_the_value() -> None:
    secret_ip = "999.888.777.666"
    reason, detail = reason_of(body(ip=secret_ip))
    assert secret_ip not in detail and reason == "bad_ip"


def test_envelopes_unwrap_to_the_same_login() -> None:
    inner = json.loads(body())
    sns = json.dumps({"Type": "Notification", "Message": json.dumps(inner)})
    bridge = json.dumps({"detail-type": "login", "detail": inner})
    assert parse_login(sns) == parse_login(bridge) == parse_login(body())
