"""PII never leaks, and the guard that says so really bites.

The autouse ``pii_guard`` (tests/conftest.py -> support/pii_guard.py) already checks every test of
this folder. These tests prove the guard catches each kind of leak, and push the handler down the
paths most likely to leak: rejects of every kind, a database that is down, bad keys and URLs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Invoke, LogCapture, new_key_spec
from login_etl import handler
from login_etl.config import Settings, parse_database_url
from login_etl.errors import ConfigError, LoginEtlError, TransientStoreError
from login_etl.pii import KeyRing
from support.pg import TestDB
from support.pii_guard import PiiGuard, pii_of_body

EventFactory = Callable[..., dict[str, Any]]
IP = "203.0.113.199"
DEVICE = "555-12-34567"


def login(**overrides: Any) -> str:
    return json.dumps(
        {
            "user_id": "u1",
            "app_version": "1.0",
            "device_type": "ios",
            "ip": IP,
            "device_id": DEVICE,
            **overrides,
        }
    )


def test_the_guard_catches_a_raw_value_in_a_log_line_an_exception_and_a_table() -> None:
    guard = PiiGuard()
    guard.watch_body(json.dumps({"Type": "Notification", "Message": login()}))
    assert guard.pii == {IP, DEVICE}
    guard.check_text("log", f'{{"message": "oops {IP}"}}')
    guard.check_text("exception", f"bad device {DEVICE}")
    guard.scan_database(lambda sql: [[f"(m1,bad_ip,{IP})"]] if "rejected" in sql else [], "db")
    assert [leak.where for leak in guard.verdict()] == ["db.user_logins_rejected", "log", "exception"]


def test_the_guard_catches_key_material_and_passwords() -> None:
    guard = PiiGuard()
    spec = new_key_spec("k1")
    guard.watch_secret(spec.partition(":")[2])
    guard.watch_secret("hunter2-password")
    guard.check_text("stderr", f"PII_KEYS={spec}")
    guard.check_text("log", "postgresql://u:hunter2-password@h/db")
    assert len(guard.verdict()) == 2


def test_short_values_are_not_watched_so_base64_cannot_false_alarm() -> None:
    assert pii_of_body(login(ip="::1", device_id="abc")) == {"::1", "abc"}
    guard = PiiGuard()
    guard.watch({"::1", "abc", "1.2.3.4"})
    assert guard.pii == {"1.2.3.4"}


def test_every_reject_path_and_a_database_outage_leak_nothing(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    sqs_event: EventFactory,
    logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = [
        login(),
        login(ip=IP + " "),
        login(ip=IP + "%eth0"),
        login(device_id=DEVICE * 20),
        login(user_id="nul\u0000"),
        login(app_version=IP),
        "not json " + IP + " " + DEVICE,
        json.dumps([IP, DEVICE]),
    ]
    invoke_handler(sqs_event(hostile))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:pw-Secret-123@127.0.0.1:1/nowhere")
    handler.reset()
    with pytest.raises(TransientStoreError) as caught:
        invoke_handler(sqs_event([login()]))
    printed = capsys.readouterr()
    everything = logs.text() + printed.out + printed.err + str(caught.value) + repr(caught.value)
    assert "RecordsRejected" in everything and "batch summary" in everything
    for secret in (IP, DEVICE, "pw-Secret-123"):
        assert secret not in everything
    assert lambda_env.count("user_logins_rejected") == 7


@pytest.mark.parametrize(
    "env",
    [
        {"PII_KEYS": "k1:" + "A" * 20},
        {"PII_KEYS": "k1:not base64 at all!!"},
        {"PII_KEYS": new_key_spec("k1"), "PII_ACTIVE_KEY_ID": "k9"},
        {"DATABASE_URL": "mysql://root:Tops3cret-pw@host/db"},
        {"DATABASE_URL": "postgresql://root:Tops3cret-pw@/"},
    ],
    ids=["short key", "not base64", "unknown active id", "wrong scheme", "no database"],
)
def test_configuration_errors_name_the_variable_never_the_value(env: dict[str, str]) -> None:
    base = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "PII_KEYS": new_key_spec("k1")}
    merged = {**base, **env}
    with pytest.raises(ConfigError) as caught:
        settings = Settings.from_env(merged)
        KeyRing.from_spec(settings.pii.keys_spec or "", settings.pii.active_key_id)
    message = str(caught.value)
    for name, value in env.items():
        if name == "PII_ACTIVE_KEY_ID":
            continue  # a key id names a key; it is not one
        secret = value.partition(":")[2] if value.startswith("k1:") else value
        assert secret not in message
    assert "Tops3cret-pw" not in message


def test_reprs_of_settings_and_key_rings_hide_secrets() -> None:
    spec = new_key_spec("k1")
    url = "postgresql://etl:Very-Secret-9@db.internal:5432/logins"
    settings = Settings.from_env({"DATABASE_URL": url, "PII_KEYS": spec})
    ring = KeyRing.from_spec(spec)
    for text in (repr(settings), repr(parse_database_url(url)), repr(ring), str(ring)):
        assert "Very-Secret-9" not in text
        assert spec.partition(":")[2] not in text


def test_a_key_ring_error_raised_deep_inside_is_a_package_error_without_the_key() -> None:
    key = new_key_spec("k1").partition(":")[2][:30]
    with pytest.raises(LoginEtlError) as caught:
        KeyRing.from_spec(f"k1:{key}")
    assert key not in str(caught.value)
