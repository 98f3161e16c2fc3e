"""What a newcomer runs leaves nothing behind, and says what it did.

- ``demo`` stopped with SIGTERM stops its embedded PostgreSQL, as Ctrl-C does (a postmaster
  daemonises, so nothing else would ever stop it);
- ``sqs-local`` gives export lines and commands that work as printed, for send, drain, rejects and
  rejects --replay, and SIGTERM stops everything it started;
- ``migrate`` says it upgraded an exercise-style table;
- ``send`` to a FIFO queue gets every body in, whatever its user_id.

Processes are found by an environment marker each test sets (``support.leftovers``).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from login_etl_cli.sender import send_bodies
from support.leftovers import stop, survivors_after
from support.pg import TestDB

from .conftest import LOGIN_ETL, QueueFactory, run_cli

REPO = Path(__file__).resolve().parents[2]
MARK = "LOGIN_ETL_HYGIENE_PROBE"


@pytest.fixture
def marked_env(cli_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A user's environment without a database or key (so the command starts its own), marked."""
    token = uuid.uuid4().hex
    env = {k: v for k, v in cli_env.items() if k not in ("DATABASE_URL", "PII_KEYS")}
    env[MARK] = token
    yield env
    stop([pid for pid, _ in survivors_after(token, grace_s=0, name=MARK)])  # never leak, even on failure


def read_until(stream: IO[str], marker: str, seen: list[str]) -> None:
    for line in stream:
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(f"{marker!r} never came: {''.join(seen)}")


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], *, stdout: int) -> Iterator[subprocess.Popen[str]]:
    """A started command, killed on the way out if the test did not end it."""
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def sigterm(proc: subprocess.Popen[str], *, timeout_s: float) -> str:
    """Send SIGTERM, wait for the exit, return what is left of stderr."""
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=timeout_s)
    return rest


def postmasters(env: dict[str, str]) -> list[tuple[int, str]]:
    return [p for p in survivors_after(env[MARK], grace_s=0, name=MARK) if "postgres" in p[1]]


def test_demo_killed_with_sigterm_stops_its_embedded_postgres(marked_env: dict[str, str]) -> None:
    seen: list[str] = []
    with running([LOGIN_ETL, "demo", "--synthetic", "50000"], marked_env, stdout=subprocess.DEVNULL) as proc:
        assert proc.stderr is not None
        read_until(proc.stderr, "starting an in-process SQS API", seen)  # Postgres is up by now
        assert postmasters(marked_env), "the demo's embedded PostgreSQL should be running"
        rest = sigterm(proc, timeout_s=120)

    assert proc.returncode == 130, "".join(seen) + rest
    assert rest.strip().splitlines()[-1] == "error: interrupted; everything this command started was stopped"
    assert "Traceback" not in rest
    assert survivors_after(marked_env[MARK], name=MARK) == []


def test_sqs_local_commands_work_as_printed_and_sigterm_stops_everything(marked_env: dict[str, str]) -> None:
    printed: list[str] = []
    with running([LOGIN_ETL, "sqs-local"], marked_env, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        read_until(proc.stdout, "# then, for example:", printed)
        commands = [proc.stdout.readline() for _ in range(4)]
        exports = [line for line in printed if line.startswith("export ")]
        names = [line.split()[1].split("=", 1)[0] for line in exports]
        assert names == [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "DATABASE_URL",
            "PII_KEYS",
            "AWS_ENDPOINT_URL",
            "Q",
            "DLQ",
        ]
        assert [shlex.split(c)[1] for c in commands] == ["send", "drain", "rejects", "rejects"]

        # Another shell: paste the exports, then run each printed command exactly as printed.
        shell_env = {k: v for k, v in marked_env.items() if not k.startswith("AWS_")}
        outputs = []
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", "".join(exports) + command],
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (command, done.stderr)
            outputs.append(done)

        send, drained, listed, replayed = outputs
        assert send.stderr.strip().splitlines()[-1].startswith("sent=100 failed=0 ")
        assert "received=100 succeeded=100 failed=0 deleted=100" in drained.stderr
        [header, row] = listed.stdout.strip().splitlines()
        assert header.split("\t") == ["rejected_at", "sent_at", "reason", "detail", "message_id"]
        assert row.split("\t")[2:4] == ["missing_field", "user_id"]
        assert replayed.stderr.strip().splitlines()[-1] == "replayed=1 failed=0"
        assert postmasters(marked_env)
        err = sigterm(proc, timeout_s=60)

    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1] == "sqs-local: stopped; everything it started is gone"
    assert survivors_after(marked_env[MARK], name=MARK) == []


def test_migrate_says_it_upgraded_an_exercise_table(cli_env: dict[str, str], pg_server_url: str) -> None:
    legacy = TestDB(pg_server_url)
    try:
        legacy.query(
            "CREATE TABLE user_logins (user_id varchar(128), device_type varchar(32), "
            "masked_ip varchar(256), masked_device_id varchar(256), locale varchar(32), "
            "app_version integer, create_date date)"
        )
        legacy.query("INSERT INTO user_logins (user_id) VALUES ('old-row')")
        env = {**cli_env, "DATABASE_URL": legacy.url}

        result = run_cli("migrate", env=env)

        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == (
            "migrate: created user_logins_rejected, user_logins_staging; "
            "upgraded user_logins (added loaded_at, message_id)"
        )
        [[message_id]] = legacy.query("SELECT message_id FROM user_logins WHERE user_id = 'old-row'")
        assert message_id.startswith("legacy:")
    finally:
        legacy.drop()


USER_IDS = [
    "plain-user",
    "",
    " leading-space",
    "has space",
    "Jürgen",
    "tab\there",
    "x" * 129,
    "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
    "\u2028",
    None,
    42,
]


def test_send_to_a_fifo_queue_gets_every_body_in_whatever_its_user_id(make_queue: QueueFactory) -> None:
    queue = make_queue(fifo=True)
    bodies = [json.dumps({"user_id": user_id, "ip": "10.0.0.1"}) for user_id in USER_IDS] + ["not json"]

    result = send_bodies(queue.sqs, queue.url, bodies)

    assert result.failures == []
    assert result.sent == len(bodies)
    received: list[dict[str, Any]] = []
    while len(received) < len(bodies):
        out = queue.sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"], WaitTimeSeconds=1
        )
        for message in out.get("Messages", []):
            received.append(message)
            queue.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
    groups = {m["Body"]: m["Attributes"]["MessageGroupId"] for m in received}
    assert groups[bodies[0]] == "plain-user"
    assert groups[bodies[7]] == USER_IDS[7]
    assert {groups[b] for i, b in enumerate(bodies) if i not in (0, 7)} == {"no-user-id"}
