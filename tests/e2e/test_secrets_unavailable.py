"""Secrets Manager unavailable for a while is transient, not a configuration error.

Throttling, a 5xx answer and a network failure on the way to Secrets Manager say nothing about
the secret: the batch fails whole (nothing written, nothing rejected, every message waits in the
queue) with one ``secrets unavailable`` line that names the secret's variable, never a value,
and once Secrets Manager answers again every message lands once. A secret that is really wrong
(access denied, not found) stays a ``configuration error``.

Every peer is real: the network case points the function at a loopback port nobody listens on;
the throttling and 5xx cases at a small HTTP server on 127.0.0.1 answering as AWS's JSON
protocol does (status, ``__type``, message); the recovery at moto's server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import LogCapture
from login_etl import handler
from login_etl.errors import ConfigError, LoginEtlError, SecretsUnavailableError
from login_etl.secrets import get_secret_json
from login_etl_cli.runner import drain, drain_until_settled
from support.aws_peer import aws_error, aws_json_peer, closed_port
from support.bodies import login_body
from support.ledger import send
from support.pg import TestDB

from .conftest import Queue, QueueFactory, run_cli

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pii-keys-AbCdEf"

Endpoint = Callable[[], contextlib.AbstractContextManager[str]]


def aws_answering(status: int, code: str | None) -> contextlib.AbstractContextManager[str]:
    """Every call answered with ``status`` and the AWS error ``code``; None: dropped unanswered."""
    return aws_json_peer(status, None if code is None else aws_error(code))


#: Each failure that says nothing about the secret: how to produce it, what the line names.
TRANSIENT: dict[str, tuple[Endpoint, str]] = {
    "network: connection refused": (closed_port, "EndpointConnectionError"),
    "network: connection dropped unanswered": (lambda: aws_answering(0, None), "ConnectionClosedError"),
    "throttled: ThrottlingException": (
        lambda: aws_answering(400, "ThrottlingException"),
        "ThrottlingException",
    ),
    "throttled: TooManyRequestsException": (
        lambda: aws_answering(400, "TooManyRequestsException"),
        "TooManyRequestsException",
    ),
    "throttled: RequestLimitExceeded": (
        lambda: aws_answering(400, "RequestLimitExceeded"),
        "RequestLimitExceeded",
    ),
    "5xx: InternalServiceError": (lambda: aws_answering(500, "InternalServiceError"), "InternalServiceError"),
    "5xx: ServiceUnavailable": (lambda: aws_answering(503, "ServiceUnavailable"), "ServiceUnavailable"),
    "5xx: an unnamed 502 from a proxy": (lambda: aws_answering(502, ""), "502"),
}

#: Failures that are the secret's or the role's fault: no retry makes them work.
PERMANENT: dict[str, tuple[Endpoint, str]] = {
    "AccessDeniedException": (
        lambda: aws_answering(400, "AccessDeniedException"),
        "access denied (AccessDeniedException)",
    ),
    "ResourceNotFoundException": (
        lambda: aws_answering(400, "ResourceNotFoundException"),
        "not found (ResourceNotFoundException)",
    ),
    "DecryptionFailure": (
        lambda: aws_answering(400, "DecryptionFailure"),
        "its KMS key cannot decrypt it (DecryptionFailure)",
    ),
    "UnrecognizedClientException": (
        lambda: aws_answering(400, "UnrecognizedClientException"),
        "the AWS credentials are not valid (UnrecognizedClientException)",
    ),
}


@pytest.fixture
def secrets_at(secrets_client: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Point the next Secrets Manager client at ``url`` (a new provider, as in a new container).
    Two attempts, so botocore's own retry is exercised but the test does not wait out its backoff."""
    from aws_lambda_powertools.utilities.parameters import base
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")

    def point(url: str) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
        DEFAULT_PROVIDERS.clear()
        base.clear_caches()

    return point


#: Every case, with the error class it must raise and the one it must not.
KINDS: dict[str, tuple[Endpoint, str, type[LoginEtlError], type[LoginEtlError]]] = {
    **{
        f"transient, {name}": (how, said, SecretsUnavailableError, ConfigError)
        for name, (how, said) in TRANSIENT.items()
    },
    **{
        f"wrong, {code}": (how, said, ConfigError, SecretsUnavailableError)
        for code, (how, said) in PERMANENT.items()
    },
}


@pytest.mark.parametrize("case", sorted(KINDS))
def test_only_a_wrong_secret_or_role_is_a_configuration_error(
    case: str, secrets_at: Callable[[str], None]
) -> None:
    endpoint, said, raised_as, never_as = KINDS[case]
    with endpoint() as url:
        secrets_at(url)
        with pytest.raises(raised_as) as raised:
            get_secret_json(ARN, 0, "PII_KEYS_SECRET_ARN")
    assert not isinstance(raised.value, never_as)
    message = str(raised.value)
    assert message.startswith(f"could not read secret PII_KEYS_SECRET_ARN ({ARN})") and said in message


def body(i: int) -> str:
    return login_body(i, "10.4.0")


@pytest.fixture
def key_secret(
    lambda_env: TestDB, secrets_client: Any, sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The function reads its key ring from a secret (moto's), re-read at every batch."""
    value = json.dumps({"active": "k1", "keys": {"k1": base64.b64encode(secrets.token_bytes(64)).decode()}})
    arn = secrets_client.create_secret(Name=f"pii-{secrets.token_hex(4)}", SecretString=value)["ARN"]
    monkeypatch.delenv("PII_KEYS", raising=False)
    monkeypatch.setenv("PII_KEYS_SECRET_ARN", arn)
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    handler.reset()
    yield value
    handler.reset()


@pytest.mark.parametrize(
    "case", ["network: connection refused", "throttled: ThrottlingException", "5xx: InternalServiceError"]
)
def test_secrets_manager_unavailable_mid_run_fails_whole_batches_then_everything_lands_once(
    case: str,
    key_secret: str,
    lambda_env: TestDB,
    secrets_at: Callable[[str], None],
    sqs_endpoint: str,
    make_queue: QueueFactory,
    logs: LogCapture,
) -> None:
    endpoint, names = TRANSIENT[case]
    queue: Queue = make_queue(visibility_s=1, max_receive=5)
    send(queue.sqs, queue.url, [body(i) for i in range(5)])
    assert drain(queue.sqs, queue.url).deleted == 5  # warm: the key secret was read

    with endpoint() as url:
        secrets_at(url)
        send(queue.sqs, queue.url, [body(i) for i in range(5, 10)])
        logs.clear()
        stats = drain(queue.sqs, queue.url)

    # botocore's backoff can outlast the 1 s visibility: the batch may come round again.
    assert stats.deleted == 0 and stats.failed == stats.received >= 5
    assert lambda_env.count("user_logins") == 5, "nothing of the failed batch is written"
    assert lambda_env.count("user_logins_rejected") == 0
    assert queue.depth() == 5 and queue.dlq_depth() == 0, "every message waits in the queue"
    lines = logs.lines()
    unavailable = [line for line in lines if line["message"] == "secrets unavailable"]
    assert len(unavailable) == stats.batches, logs.text()
    assert all("PII_KEYS_SECRET_ARN" in x["error"] and names in x["error"] for x in unavailable)
    assert not [line for line in lines if line["message"] == "configuration error"], logs.text()
    assert key_secret not in logs.text()

    secrets_at(sqs_endpoint)  # Secrets Manager answers again
    settled, done = drain_until_settled(queue.sqs, queue.url, timeout_s=30)

    assert done and settled.failed == 0
    assert lambda_env.count("user_logins") == 10 and lambda_env.count("user_logins_rejected") == 0
    assert queue.depth() == 0 and queue.dlq_depth() == 0


def test_the_database_secret_unavailable_at_startup_is_secrets_unavailable_too(
    lambda_env: TestDB,
    secrets_at: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    invoke_handler: Callable[[dict[str, Any]], Any],
    sqs_event: Callable[..., dict[str, Any]],
    logs: LogCapture,
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DB_SECRET_ARN", ARN.replace("pii-keys", "db"))
    handler.reset()
    with closed_port() as url:
        secrets_at(url)
        with pytest.raises(SecretsUnavailableError):
            invoke_handler(sqs_event([body(1)]))

    [line] = [line for line in logs.lines() if line["level"] == "ERROR"]
    assert line["message"] == "secrets unavailable"
    assert "DB_SECRET_ARN" in line["error"] and "EndpointConnectionError" in line["error"]
    assert lambda_env.count("user_logins") == 0


def test_the_cli_says_secrets_unavailable_in_one_line_and_exits_1_not_2(cli_env: dict[str, str]) -> None:
    """``drain`` reads the key ring before it touches the queue: a transient failure there is the
    work failing (exit 1, worth a retry), not a bad configuration (exit 2)."""
    with closed_port() as nowhere:
        env = {k: v for k, v in cli_env.items() if k != "PII_KEYS"}
        env.update(PII_KEYS_SECRET_ARN=ARN, AWS_ENDPOINT_URL_SECRETS_MANAGER=nowhere, AWS_MAX_ATTEMPTS="1")
        result = run_cli(
            "drain", "--queue-url", f"{nowhere}/123456789012/q", "--endpoint-url", nowhere, env=env
        )

    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: could not read secret PII_KEYS_SECRET_ARN ({ARN}) now: Secrets Manager could not be "
        "reached (EndpointConnectionError); transient, worth a retry\n"
    )
