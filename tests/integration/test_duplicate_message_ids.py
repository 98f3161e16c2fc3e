"""One messageId twice in one batch: one row, and the batch still accounts for every record.

Lambda's SQS event source mapping can hand the function the same message twice, even in one
batch (at-least-once delivery). A table over the class: the repeated record valid, invalid, or
refused by the database; two or three copies, side by side or apart; on the fast path (COPY) and
on the safe path (staging + ON CONFLICT, forced by a row the database refuses elsewhere in the
batch, which also runs the bisection). Each case asserts what a user relies on: exactly one row
per message id in the table it belongs to, no record reported failed, and
received = inserted + duplicates + rejected + failed, each extra copy counted once: as a
duplicate for a valid record and for a row the database refused, as a rejected record for an
invalid one (as for a redelivery across batches).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Invoke, LogCapture
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB

REFUSED_PREFIX = "refused-"


def body(i: int, user_id: str | None = None) -> str:
    return json.dumps(
        {
            "user_id": user_id or f"user-{i}",
            "app_version": "2.3.0",
            "device_type": "android",
            "ip": f"10.2.0.{i}",
            "locale": "PT",
            "device_id": f"dev-{i:04d}",
        }
    )


KINDS: dict[str, Callable[[int], str]] = {
    "valid": body,
    "invalid": lambda _: "{not json",
    "refused by the database": lambda i: body(i, user_id=f"{REFUSED_PREFIX}{i}"),
}
# Where the copies of record 0 go in a batch of 12: (positions of the copies).
LAYOUTS = {"side by side": (0, 1), "apart": (0, 11), "three copies": (0, 5, 11)}


@pytest.mark.parametrize("safe_path", [False, True], ids=["fast path", "safe path"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_message_id_repeated_in_one_batch_is_one_row_and_accounted_for(
    kind: str, layout: str, safe_path: bool, invoke_handler: Invoke, lambda_env: TestDB, logs: LogCapture
) -> None:
    db = lambda_env
    db.query(f"ALTER TABLE user_logins ADD CONSTRAINT t_refuse CHECK (user_id NOT LIKE '{REFUSED_PREFIX}%')")
    repeated = make_record(KINDS[kind](0), message_id="repeated-0")
    others = [make_record(body(i)) for i in range(1, 12)]
    if safe_path:  # a refused row elsewhere: the batch goes through staging and bisection
        others[4] = make_record(body(5, user_id=f"{REFUSED_PREFIX}5"))
    copies = LAYOUTS[layout]
    records: list[Any] = []
    for position in range(12 + len(copies) - 1):
        records.append(dict(repeated) if position in copies else others.pop(0))
    assert not others and len(records) == 11 + len(copies)

    response = invoke_handler(dict(make_event(records)))

    assert response == {"batchItemFailures": []}
    ids = [r["messageId"] for r in records]
    stored = Counter(row[0] for row in db.query("SELECT message_id FROM user_logins"))
    rejected = Counter(row[0] for row in db.query("SELECT message_id FROM user_logins_rejected"))
    assert max((stored + rejected).values()) == 1, "a message id is in one row of one table"
    assert set(stored) | set(rejected) == set(ids), "every message id landed somewhere"
    assert ("repeated-0" in stored) == (kind == "valid")
    [summary] = logs.summaries()
    received = summary["inserted"] + summary["duplicates"] + summary["rejected"] + summary["failed"]
    assert summary["received"] == received == len(records)
    assert summary["inserted"] == len(stored)
    extra_copies = len(copies) - 1
    rejected_copies = summary["rejected"] - len(rejected)  # counted as rejected, but no row of their own
    assert summary["duplicates"] + rejected_copies == extra_copies, "each extra copy counted once"
    if kind == "invalid":  # like a redelivered reject: each copy is a rejected record
        assert rejected_copies == extra_copies
    else:  # a second copy of a row the database refused is a duplicate of that message
        assert summary["duplicates"] == extra_copies
