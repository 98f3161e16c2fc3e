"""``rejects --replay`` carries every printable-ASCII ``messageId`` verbatim through its array
parameters: the skip list of rows that do not decrypt, and the delete of rows SQS accepted.

pg8000's own list encoding left ``null`` unquoted, which PostgreSQL reads as NULL: one row that
did not decrypt, with an id spelled ``null``, then made ``NOT (message_id = ANY(...))`` NULL for
every row, and nothing else was replayed.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Invoke
from login_etl.store import text_array
from login_etl_cli.operator import REPLAY_ATTRIBUTE
from support.pg import TestDB

from .conftest import QueueFactory, run_cli

SPELLINGS = ["NULL", '"quoted"', "back\\slash", " spaced id ", "{a,b}", "it's", "NuLl2"]
#: More than one replay chunk (10), so the skip list is used by a later pick.
OTHERS = SPELLINGS + [f"id-{i}" for i in range(6)]


@pytest.mark.parametrize("null_decrypts", [False, True], ids=["null skipped", "null replayed"])
def test_replay_carries_any_spelling_of_message_id_through_its_array_parameters(
    cli_env: dict[str, str],
    invoke_handler: Invoke,
    lambda_env: TestDB,
    make_queue: QueueFactory,
    sqs_endpoint: str,
    null_decrypts: bool,
) -> None:
    records = [{"messageId": mid, "body": f"not json {i}"} for i, mid in enumerate(["null", *OTHERS])]
    assert invoke_handler({"Records": records}) == {"batchItemFailures": []}
    assert lambda_env.count("user_logins_rejected") == len(records)
    # "null" is picked first; when it does not decrypt (another key's ciphertext), it joins the skip
    # list that every later pick passes as an array; when it does, it is in the delete's array.
    first = "UPDATE user_logins_rejected SET rejected_at = rejected_at - interval '1 hour'"
    lambda_env.query(f"{first} WHERE message_id = 'null'")
    if not null_decrypts:
        corrupt = "UPDATE user_logins_rejected SET body_encrypted = 'k1:' || repeat('A', 40)"
        lambda_env.query(f"{corrupt} WHERE message_id = 'null'")
    target = make_queue()

    replay = run_cli(
        "rejects", "--replay", "--queue-url", target.url, "--endpoint-url", sqs_endpoint, env=cli_env
    )

    replayed = OTHERS + (["null"] if null_decrypts else [])
    assert f"replayed={len(replayed)} failed={0 if null_decrypts else 1}" in replay.stderr, replay.stderr
    left = lambda_env.query("SELECT message_id FROM user_logins_rejected")
    assert left == ([] if null_decrypts else [["null"]])
    got: list[dict[str, Any]] = []
    while len(got) < len(replayed):
        batch = target.sqs.receive_message(
            QueueUrl=target.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        assert batch, "fewer messages than replayed"
        got += batch
    assert sorted(m["MessageAttributes"][REPLAY_ATTRIBUTE]["StringValue"] for m in got) == sorted(replayed)


def test_text_array_round_trips_every_printable_ascii_spelling(lambda_env: TestDB) -> None:
    ids = [chr(c) for c in range(0x20, 0x7F)] + ["null", "NULL", "", '\\"', "a\\\\b", None]
    [[back]] = lambda_env.query("SELECT CAST(:ids AS varchar[])", ids=text_array(ids))
    assert back == ids
