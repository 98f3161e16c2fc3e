"""A secret that turns unreadable while the function runs fails whole batches and loses nothing.

The promise (docs/operations.md, "The function cannot start"; the handler's
``_deploy_errors_logged``): the key secret is re-read per batch (cached ``SECRETS_MAX_AGE``) and
the database secret at every new connection, so a bad rotation, a secret scheduled for deletion
or a value that is no longer JSON surfaces at a batch, not only at a cold start. Then: one
``configuration error`` line that never shows the secret, the whole batch failed, nothing
written to ``user_logins`` and no record turned into a reject, every message left in the queue;
and once the secret is fixed, every message lands once. Through the real drain path: moto's SQS
and Secrets Manager APIs, ``runner.drain``, the handler, PostgreSQL behind a fault proxy.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import LogCapture
from login_etl import handler
from login_etl_cli.runner import drain, drain_until_settled
from support.bodies import login_body
from support.ledger import send
from support.pg import TestDB
from support.proxy import FaultProxy, target_of

from .conftest import Queue, QueueFactory


@dataclass
class Secrets:
    client: Any
    db_arn: str
    db_value: str
    key_arn: str
    key_value: str
    proxy: FaultProxy


@pytest.fixture
def on_secrets(db: TestDB, secrets_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Secrets]:
    """The function as deployed: both secrets, re-read at every use (SECRETS_MAX_AGE=0)."""
    proxy = FaultProxy(target_of(db.url))
    suffix = secrets.token_hex(4)
    db_value = json.dumps(
        {
            "username": urlsplit(db.url).username or "postgres",
            "password": "unused-with-trust-auth",
            "host": "127.0.0.1",
            "port": proxy.port,
            "dbname": db.name,
        }
    )
    key_value = json.dumps(
        {"active": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(64)).decode()}}
    )
    db_arn = secrets_client.create_secret(Name=f"db-{suffix}", SecretString=db_value)["ARN"]
    key_arn = secrets_client.create_secret(Name=f"pii-{suffix}", SecretString=key_value)["ARN"]
    for name in ("DATABASE_URL", "PII_KEYS", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", db_arn)
    monkeypatch.setenv("PII_KEYS_SECRET_ARN", key_arn)
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    handler.reset()
    yield Secrets(secrets_client, db_arn, db_value, key_arn, key_value, proxy)
    handler.reset()
    proxy.close()


def _put(s: Secrets, arn: str, value: str) -> None:
    s.client.put_secret_value(SecretId=arn, SecretString=value)


def _put_db_and_reconnect(s: Secrets, value: str) -> None:
    """The database secret is read when a connection opens: drop the open one too."""
    _put(s, s.db_arn, value)
    s.proxy.down()
    s.proxy.up()


def _second_key(s: Secrets) -> str:
    ring = json.loads(s.key_value)
    ring["keys"]["k0"] = base64.b64encode(secrets.token_bytes(64)).decode()
    return json.dumps(ring)


# Each: (which secret, how it breaks, how it is fixed, what the error line says)
Break = Callable[[Secrets], None]
BREAKS: dict[str, tuple[Break, Break, str]] = {
    "key secret: a retired key left in it": (
        lambda s: _put(s, s.key_arn, _second_key(s)),
        lambda s: _put(s, s.key_arn, s.key_value),
        "must hold only the active key",
    ),
    "key secret: not JSON": (
        lambda s: _put(s, s.key_arn, "k1=" + json.loads(s.key_value)["keys"]["k1"]),
        lambda s: _put(s, s.key_arn, s.key_value),
        "is not JSON",
    ),
    "key secret: scheduled for deletion": (
        lambda s: s.client.delete_secret(SecretId=s.key_arn, RecoveryWindowInDays=7),
        lambda s: s.client.restore_secret(SecretId=s.key_arn),
        "could not read secret",
    ),
    "database secret, at a reconnect: not JSON": (
        lambda s: _put_db_and_reconnect(s, "postgresql://nope"),
        lambda s: _put(s, s.db_arn, s.db_value),
        "is not JSON",
    ),
    "database secret, at a reconnect: no password": (
        lambda s: _put_db_and_reconnect(s, json.dumps({"host": "127.0.0.1"})),
        lambda s: _put(s, s.db_arn, s.db_value),
        "lacks username, password",
    ),
}


def body(i: int) -> str:
    return login_body(i, "10.3.0")


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_a_secret_broken_mid_run_fails_whole_batches_then_everything_lands_once(
    case: str, on_secrets: Secrets, db: TestDB, make_queue: QueueFactory, logs: LogCapture
) -> None:
    breaks, fixes, says = BREAKS[case]
    queue: Queue = make_queue(visibility_s=1, max_receive=5)
    send(queue.sqs, queue.url, [body(i) for i in range(5)])
    assert drain(queue.sqs, queue.url).deleted == 5  # warm: connection open, secrets read

    breaks(on_secrets)
    send(queue.sqs, queue.url, [body(i) for i in range(5, 10)])
    logs.clear()
    stats = drain(queue.sqs, queue.url)

    assert (stats.received, stats.failed, stats.deleted) == (5, 5, 0)
    assert db.count("user_logins") == 5, "nothing of the failed batch is written"
    assert db.count("user_logins_rejected") == 0, "never a march of rows to the rejects"
    assert queue.depth() == 5 and queue.dlq_depth() == 0, "every message waits in the queue"
    errors = [line for line in logs.lines() if line["message"] == "configuration error"]
    assert errors and all(says in line["error"] for line in errors), logs.text()
    assert logs.summaries() == [], "no batch summary: the batch never ran"
    for secret in (on_secrets.key_value, on_secrets.db_value, "unused-with-trust-auth"):
        assert secret not in logs.text()

    fixes(on_secrets)
    settled, done = drain_until_settled(queue.sqs, queue.url, timeout_s=30)

    assert done and settled.failed == 0
    assert db.count("user_logins") == 10 and db.count("user_logins_rejected") == 0
    assert queue.depth() == 0 and queue.dlq_depth() == 0
