"""The demo's summary finds this run's rows by message id, whatever the ids are spelled.

The demo counts what its messages became with ``message_id = ANY(CAST(:ids AS varchar[]))``.
Handed a Python list, pg8000 leaves some strings unquoted in the array literal, and PostgreSQL
reads an element spelled ``null`` (any case) as NULL: that message was then missing from the
counts and the sample rows. The rows here are written by the real handler into the real
PostgreSQL; the ids cover what an array literal treats specially (NULL spellings, quotes,
backslashes, commas, braces, spaces), and rows of other messages share the tables.
"""

from __future__ import annotations

import json
from collections import Counter

from conftest import Invoke
from login_etl.constants import Reason
from login_etl.store import PgStore
from login_etl_cli.demo import _landed, _sample_rows
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB, connect

VALID_IDS = ["null", '"quoted"', "back\\slash", "{a,b}", " spaced ", "Null"]
REJECTED_IDS = ["NULL", "it's", "a,b", '\\"', "nUlL", "{}"]
#: Rows of another run in the same database: never counted.
OTHER_IDS = ["other-valid", "other-rejected"]


def _body(user: str) -> str:
    return json.dumps(
        {"user_id": user, "app_version": "2.3.0", "device_type": "android", "ip": "198.51.100.7",
         "locale": "RU", "device_id": f"{user}-device"}
    )  # fmt: skip


def test_landed_and_sample_rows_find_every_spelling_of_message_id(
    invoke_handler: Invoke, lambda_env: TestDB
) -> None:
    valid = [*VALID_IDS, OTHER_IDS[0]]
    rejected = [*REJECTED_IDS, OTHER_IDS[1]]
    records = [make_record(_body(f"u{i}"), message_id=mid) for i, mid in enumerate(valid)]
    records += [make_record("not json", message_id=mid) for mid in rejected]
    assert invoke_handler(dict(make_event(records))) == {"batchItemFailures": []}
    assert lambda_env.count("user_logins") == len(valid)
    assert lambda_env.count("user_logins_rejected") == len(rejected)

    store = PgStore(lambda: connect(lambda_env.url))
    try:
        ids = VALID_IDS + REJECTED_IDS
        assert _landed(store, ids) == (len(VALID_IDS), Counter({str(Reason.NOT_JSON): len(REJECTED_IDS)}))
        samples = _sample_rows(store, ids, limit=100)
    finally:
        store.close()
    assert sorted(row[0] for row in samples) == sorted(f"u{i}" for i in range(len(VALID_IDS)))
