"""Credentials and keys from Secrets Manager (moto server's real API), as on AWS."""

from __future__ import annotations

import base64
import json
import secrets
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from login_etl import handler
from login_etl.pii import KeyRing
from support.pg import TestDB
from support.proxy import FaultProxy, target_of


def b64key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


@pytest.fixture
def secret_env(
    db: TestDB, secrets_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestDB, Any, str, dict[str, Any]]]:
    """DB credentials (RDS shape) and the PII key ring in Secrets Manager; no DATABASE_URL/PII_KEYS.

    The RDS shape names a TCP host, so the database is reached through a (healthy) TCP proxy.
    """
    proxy = FaultProxy(target_of(db.url))
    suffix = secrets.token_hex(4)
    db_secret = secrets_client.create_secret(
        Name=f"db-{suffix}",
        SecretString=json.dumps(
            {
                "engine": "postgres",
                "username": urlsplit(db.url).username or "postgres",
                "password": "unused-with-trust-auth",
                "host": "127.0.0.1",
                "port": proxy.port,
                "dbname": db.name,
            }
        ),
    )["ARN"]
    keys = {"active": "k1", "keys": {"k1": b64key()}}
    key_arn = secrets_client.create_secret(Name=f"pii-{suffix}", SecretString=json.dumps(keys))["ARN"]
    for name in ("DATABASE_URL", "PII_KEYS", "PII_ACTIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", db_secret)
    monkeypatch.setenv("PII_KEYS_SECRET_ARN", key_arn)
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    handler.reset()
    yield db, secrets_client, key_arn, keys
    handler.reset()
    proxy.close()


def login(i: int) -> str:
    return json.dumps(
        {"user_id": f"u{i}", "app_version": "1.0", "device_type": "ios", "ip": "10.1.1.1", "device_id": "d-1"}
    )


def test_function_runs_on_secrets_alone(
    secret_env: tuple[TestDB, Any, str, dict[str, Any]], sqs_event: Any, logs: Any
) -> None:
    db, _, _, keys = secret_env
    response = handler.lambda_handler(sqs_event([login(1)]), _context())
    assert response == {"batchItemFailures": []}
    [[masked_ip]] = db.query("SELECT masked_ip FROM user_logins")
    assert KeyRing.from_secret(keys).reveal(masked_ip) == ("ip", "10.1.1.1")
    assert "unused-with-trust-auth" not in logs.text() and keys["keys"]["k1"] not in logs.text()
    assert "boto3" in sys.modules


def test_rotated_key_secret_is_picked_up_without_a_redeploy(
    secret_env: tuple[TestDB, Any, str, dict[str, Any]], sqs_event: Any
) -> None:
    db, client, key_arn, keys = secret_env
    handler.lambda_handler(sqs_event([login(1)]), _context())

    # The function's secret holds the active key only; the operator's holds every key.
    rotated: dict[str, Any] = {"active": "k2", "keys": {"k2": b64key()}}
    client.put_secret_value(SecretId=key_arn, SecretString=json.dumps(rotated))
    handler.lambda_handler(sqs_event([login(2)]), _context())

    masks = dict(db.query("SELECT user_id, masked_ip FROM user_logins"))
    assert masks["u1"].startswith("k1:") and masks["u2"].startswith("k2:")
    ring = KeyRing.from_secret({"active": "k2", "keys": {**keys["keys"], **rotated["keys"]}})
    assert ring.reveal(masks["u1"]) == ring.reveal(masks["u2"]) == ("ip", "10.1.1.1")


def test_unreadable_secret_is_a_clear_error_naming_the_arn(
    db: TestDB, secrets_client: Any, monkeypatch: pytest.MonkeyPatch, key_spec: str, logs: Any
) -> None:
    from login_etl.errors import ConfigError

    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", missing)
    monkeypatch.setenv("PII_KEYS", key_spec)
    handler.reset()
    try:
        with pytest.raises(ConfigError) as caught:
            handler.lambda_handler({"Records": []}, _context())
    finally:
        handler.reset()
    expected = f"could not read secret DB_SECRET_ARN ({missing}): not found (ResourceNotFoundException)"
    assert str(caught.value) == expected
    [line] = [x for x in logs.lines() if x["message"] == "configuration error"]
    assert line["error"] == expected


def _context() -> Any:
    from login_etl_cli.context import LocalContext

    return LocalContext()


@pytest.mark.parametrize(
    ("name_region", "env_region", "secret_region"),
    [
        ("arn", None, "eu-west-1"),  # the ARN names its region: no variable needed
        ("arn", "us-east-1", "ap-southeast-2"),  # and the ARN's region wins over AWS_REGION
        ("name", "AWS_REGION", "eu-central-1"),  # a bare name: AWS_REGION, which botocore ignores
        ("name", "AWS_DEFAULT_REGION", "eu-north-1"),
    ],
)
def test_the_secret_region_comes_from_the_arn_then_aws_region_then_aws_default_region(
    secrets_client: Any,
    sqs_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    name_region: str,
    env_region: str | None,
    secret_region: str,
) -> None:
    from login_etl.secrets import get_secret_json

    regional = boto3.client("secretsmanager", endpoint_url=sqs_endpoint, region_name=secret_region)
    name = f"regional-{secrets.token_hex(4)}"
    arn = regional.create_secret(Name=name, SecretString='{"ok": 1}')["ARN"]
    assert f":{secret_region}:" in arn
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    if env_region in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(env_region, secret_region)
    elif env_region is not None:
        monkeypatch.setenv("AWS_REGION", env_region)
    assert get_secret_json(arn if name_region == "arn" else name, 0, "DB_SECRET_ARN") == {"ok": 1}


def test_without_any_region_a_bare_secret_name_is_one_clear_line(
    secrets_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from login_etl.errors import ConfigError
    from login_etl.secrets import get_secret_json

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError) as caught:
        get_secret_json("some-name", 0, "DB_SECRET_ARN")
    assert (
        str(caught.value) == "could not read secret DB_SECRET_ARN (some-name): "
        "no AWS region (set AWS_REGION, or give a full ARN)"
    )
