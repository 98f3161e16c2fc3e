"""``drain`` checks the whole configuration before it touches the queue.

A malformed key ring used to get past the check: every batch then failed, and the messages walked
towards the DLQ one receive at a time. Now each bad setting is one ``error:`` line and exit 2, and
the queue is exactly as it was: the message still visible, never received.
"""

from __future__ import annotations

import pytest
from conftest import new_key_spec
from login_etl_cli.aws import queue_depth
from login_etl_cli.main import main

from .conftest import QueueFactory

#: ``main`` exports Powertools settings for the handler; undo them after each test.
pytestmark = pytest.mark.usefixtures("restore_environ")

BAD = [
    {"PII_KEYS": "k1:not-base64!"},
    {"PII_KEYS": new_key_spec("k1").partition(":")[2] + ":k1"},  # written key first
    {"PII_KEYS": new_key_spec("k1"), "PII_ACTIVE_KEY_ID": "k2"},
    {"DB_STATEMENT_TIMEOUT_MS": "nan"},
    {"DB_CONNECT_TIMEOUT": "inf"},
    {"SECRETS_MAX_AGE": "1e9"},
    {"DATABASE_URL": "postgresql://app@127.0.0.1:1/db?sslmode=prefer"},
    {"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": "/nonexistent/ca.pem"},
]


@pytest.mark.parametrize("env", BAD, ids=",".join)
def test_drain_refuses_a_bad_configuration_before_touching_the_queue(
    env: dict[str, str],
    make_queue: QueueFactory,
    sqs_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue = make_queue(visibility_s=30)
    queue.sqs.send_message(QueueUrl=queue.url, MessageBody='{"user_id": "u"}')
    for name in ("DB_SECRET_ARN", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID", "DB_SSLMODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:1/db")
    monkeypatch.setenv("PII_KEYS", new_key_spec("k1"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = main(["drain", "--queue-url", queue.url, "--endpoint-url", sqs_endpoint])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert queue_depth(queue.sqs, queue.url) == (1, 0)  # visible, never received
