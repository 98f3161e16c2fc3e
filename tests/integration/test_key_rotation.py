"""Key rotation end to end against Secrets Manager (moto server's real API), as docs/security.md
describes it: the function's secret holds the active key only; the operator secret, which
``login-etl reveal`` reads, holds every key still needed to reveal. Steps: add a key, flip the
active key, retire the old one (and revoke it by removing it from the operator secret)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from login_etl import handler
from login_etl.errors import KeyRingError, RevealError
from login_etl.sources import KeySource
from login_etl_cli.context import LocalContext
from support.pg import TestDB


def b64key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def login(i: int) -> str:
    body = {
        "user_id": f"u{i}",
        "app_version": "1.0",
        "device_type": "ios",
        "ip": f"10.2.0.{i}",
        "device_id": "d",
    }
    return json.dumps(body)


class KeySecrets:
    """The two secrets, and the two readers: the function (handler) and the operator (reveal)."""

    def __init__(self, client: Any, db: TestDB, monkeypatch: pytest.MonkeyPatch) -> None:
        suffix = secrets.token_hex(4)
        self.client, self.db, self.monkeypatch = client, db, monkeypatch
        self.k1 = b64key()
        self.function_arn = self._create(f"fn-{suffix}", {"active": "k1", "keys": {"k1": self.k1}})
        self.operator_arn = self._create(f"op-{suffix}", {"active": "k1", "keys": {"k1": self.k1}})

    def _create(self, name: str, value: dict[str, Any]) -> str:
        arn: str = self.client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]
        return arn

    def put(self, arn: str, value: dict[str, Any]) -> None:
        self.client.put_secret_value(SecretId=arn, SecretString=json.dumps(value))

    def run_function(self, *bodies: str, sqs_event: Any) -> Any:
        self.monkeypatch.setenv("PII_KEYS_SECRET_ARN", self.function_arn)
        return handler.lambda_handler(sqs_event(list(bodies)), LocalContext())

    def operator_reveal(self, masked: str) -> tuple[str, str]:
        """As ``login-etl reveal`` in a fresh process: nothing cached from an earlier read."""
        from aws_lambda_powertools.utilities.parameters import base

        base.clear_caches()
        with self.monkeypatch.context() as env:
            env.setenv("PII_KEYS_SECRET_ARN", self.operator_arn)
            return KeySource.from_env().keyring().reveal(masked)

    def masks(self) -> dict[str, str]:
        return dict(self.db.query("SELECT user_id, masked_ip FROM user_logins"))


@pytest.fixture
def keys(
    lambda_env: TestDB,
    secrets_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KeySecrets]:
    monkeypatch.delenv("PII_KEYS", raising=False)
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    handler.reset()
    yield KeySecrets(secrets_client, lambda_env, monkeypatch)
    handler.reset()


def test_add_flip_retire_and_revoke(keys: KeySecrets, sqs_event: Any) -> None:
    assert keys.run_function(login(1), sqs_event=sqs_event) == {"batchItemFailures": []}

    # 1. Add: the new key goes to the operator secret first, so its values can be revealed as
    #    soon as the function masks with it.
    k2 = b64key()
    keys.put(keys.operator_arn, {"active": "k2", "keys": {"k1": keys.k1, "k2": k2}})
    # 2. Flip: the function's secret now holds k2 alone; it is picked up without a redeploy.
    keys.put(keys.function_arn, {"active": "k2", "keys": {"k2": k2}})
    keys.run_function(login(2), sqs_event=sqs_event)

    masks = keys.masks()
    assert masks["u1"].startswith("k1:") and masks["u2"].startswith("k2:")
    assert keys.operator_reveal(masks["u1"]) == ("ip", "10.2.0.1")
    assert keys.operator_reveal(masks["u2"]) == ("ip", "10.2.0.2")

    # 3. Retire and revoke: once no stored value names k1 (after re-masking), k1 leaves the
    #    operator secret, and nothing can reveal a k1 value any more.
    keys.put(keys.operator_arn, {"active": "k2", "keys": {"k2": k2}})
    with pytest.raises(RevealError, match="does not decrypt"):
        keys.operator_reveal(masks["u1"])
    assert keys.operator_reveal(masks["u2"]) == ("ip", "10.2.0.2")


def test_the_function_refuses_a_key_secret_holding_a_retired_key(
    keys: KeySecrets, sqs_event: Any, logs: Any
) -> None:
    keys.put(keys.function_arn, {"active": "k2", "keys": {"k1": keys.k1, "k2": b64key()}})

    with pytest.raises(KeyRingError, match="must hold only the active key"):
        keys.run_function(login(3), sqs_event=sqs_event)

    assert keys.db.count("user_logins") == 0
    [line] = [x for x in logs.lines() if x["message"] == "configuration error"]
    assert "must hold only the active key" in line["error"]
    assert keys.k1 not in logs.text()
