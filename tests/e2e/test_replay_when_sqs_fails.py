"""``rejects --replay`` when SQS fails: a row leaves the table only once SQS has its message.

docs/cli.md promises it: each chunk is one transaction that deletes only the rows SQS accepted;
rows SQS refuses stay, are reported, and make the exit status 1. Two ways SQS fails, through the
console script: unreachable (the whole send raises inside the chunk's transaction, so nothing
is deleted), and refusing one entry while the rest of the chunk is replayed. moto takes any
character, so the refused entry is one over the target queue's ``MaximumMessageSize`` (set to
256 KiB here, as on a queue made before August 2025), which the sender refuses for SQS
(``MessageTooLong``): a hand-made event (``sam local invoke``) can store such a body.
"""

from __future__ import annotations

from typing import Any

from conftest import Invoke
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB

from .conftest import QueueFactory, run_cli

FINE = "{not json"
#: Over the target queue's 256 KiB: a hand-made event stores it, and that queue refuses it back.
UNSENDABLE = "x" * (300 * 1024)
NOWHERE = "http://127.0.0.1:9"  # the discard port: refused at once, never leaves the machine


def _rejected(db: TestDB) -> dict[str, str]:
    return dict(db.query("SELECT message_id, reason FROM user_logins_rejected"))


def test_replay_to_an_unreachable_queue_deletes_nothing_and_exits_1(
    cli_env: dict[str, str], lambda_env: TestDB, invoke_handler: Invoke
) -> None:
    invoke_handler(dict(make_event([make_record(FINE), make_record(FINE)])))
    before = _rejected(lambda_env)

    result = run_cli(
        "rejects",
        "--replay",
        "--queue-url",
        f"{NOWHERE}/123456789012/q",
        "--endpoint-url",
        NOWHERE,
        env=cli_env,
    )

    assert result.returncode == 1, result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "Could not connect" in line and "Traceback" not in result.stderr
    assert _rejected(lambda_env) == before and len(before) == 2


def test_replay_keeps_a_row_sqs_refuses_reports_it_and_sends_the_rest(
    cli_env: dict[str, str],
    lambda_env: TestDB,
    invoke_handler: Invoke,
    make_queue: QueueFactory,
    sqs_endpoint: str,
) -> None:
    refused, fine = make_record(UNSENDABLE), make_record(FINE)
    invoke_handler(dict(make_event([refused, fine])))
    target = make_queue()
    target.sqs.set_queue_attributes(QueueUrl=target.url, Attributes={"MaximumMessageSize": str(256 * 1024)})

    result = run_cli(
        "rejects", "--replay", "--queue-url", target.url, "--endpoint-url", sqs_endpoint, env=cli_env
    )

    assert result.returncode == 1, result.stderr
    assert "replayed=1 failed=1" in result.stderr
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line == f"error: {refused['messageId']}: SQS refused it: MessageTooLong"
    assert list(_rejected(lambda_env)) == [refused["messageId"]]
    got: list[Any] = target.sqs.receive_message(QueueUrl=target.url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == [FINE]
