"""The COPY is a stream of chunks, each transformed while the server inserts the one before.

What a user relies on, against the real PostgreSQL: a batch of several chunks lands exactly as a
batch of one would (rejects and repeated ids placed at the chunk boundaries, records already
stored), the batch summary accounts for every record, records already stored are not
transformed again, and a failure inside the stream commits nothing and leaves the connection
usable.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from conftest import Invoke, LogCapture
from login_etl import handler
from login_etl.batch import CHUNK_RECORDS
from login_etl.errors import RowRefusedError
from login_etl.store import LoginRow, ReadyRows, RejectRow
from login_etl_cli.lambda_event import make_event, make_record
from support.pg import TestDB

pytestmark = pytest.mark.timeout(180)

N = 2 * CHUNK_RECORDS + CHUNK_RECORDS // 2  # three chunks, the last one partial
BOUNDARIES = [0, CHUNK_RECORDS - 1, CHUNK_RECORDS, 2 * CHUNK_RECORDS - 1, 2 * CHUNK_RECORDS, N - 1]


def _body(i: int) -> str:
    u = uuid.UUID(int=i + 1)
    return json.dumps(
        {
            "user_id": f"user-{i}",
            "app_version": f"{i % 5}.{i % 7}.{i % 3}",
            "device_type": "android" if i % 2 else "ios",
            "ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "locale": None if i % 3 == 0 else "RU",
            "device_id": f"{u.hex[-9:-6]}-{u.hex[-6:-4]}-{u.hex[-4:]}",
        }
    )


def _event(bodies: Sequence[str], ids: Sequence[str]) -> dict[str, Any]:
    return dict(make_event(make_record(body, message_id=mid) for body, mid in zip(bodies, ids, strict=True)))


@pytest.fixture
def warm(invoke_handler: Invoke) -> Invoke:
    """The handler after one batch: connected and migrated, as in a warm container."""
    invoke_handler(_event([_body(10**6)], ["warm-up"]))
    return invoke_handler


def test_a_batch_of_several_chunks_lands_exactly_once_with_every_record_accounted(
    warm: Invoke, lambda_env: TestDB, logs: LogCapture
) -> None:
    bodies = [_body(i) for i in range(N)]
    ids = [f"m-{i}" for i in range(N)]
    bad = set(BOUNDARIES)  # a reject on each side of every chunk boundary
    for i in bad:
        bodies[i] = "{not json" if i % 2 else json.dumps({"user_id": "x"})
    # The same message twice, in different chunks (SQS may deliver a message twice in one batch).
    repeats = {CHUNK_RECORDS + 7: 3, 2 * CHUNK_RECORDS + 1: CHUNK_RECORDS + 1}
    for at, original in repeats.items():
        bodies[at], ids[at] = bodies[original], ids[original]
    # Records already stored by an earlier batch: from the first and the last chunk.
    stored = [5, 6, N - 5]
    warm(_event([bodies[i] for i in stored], [ids[i] for i in stored]))
    logs.clear()

    response = warm(_event(bodies, ids))

    assert response == {"batchItemFailures": []}
    new_rows = N - len(bad) - len(repeats) - len(stored)
    assert lambda_env.count("user_logins") == 1 + len(stored) + new_rows
    assert lambda_env.count("user_logins", "message_id LIKE 'm-%'") == len(set(ids) - {ids[i] for i in bad})
    rejected = {row[0] for row in lambda_env.query("SELECT message_id FROM user_logins_rejected")}
    assert rejected == {ids[i] for i in bad}
    [summary] = logs.summaries()
    assert summary["received"] == N
    assert summary["inserted"] == new_rows
    assert summary["rejected"] == len(bad)
    assert summary["duplicates"] == len(repeats) + len(stored)
    assert summary["rejected_by_reason"] == {"not_json": 3, "missing_field": 3}
    assert summary["failed"] == 0


def test_a_redelivered_batch_is_not_transformed_again(
    warm: Invoke, lambda_env: TestDB, logs: LogCapture
) -> None:
    bodies = [_body(i) for i in range(N)]
    ids = [f"r-{i}" for i in range(N)]
    event = _event(bodies, ids)
    warm(event)
    first = logs.summaries()[-1]
    logs.clear()

    assert warm(event) == {"batchItemFailures": []}

    [again] = logs.summaries()
    assert (again["inserted"], again["duplicates"], again["rejected"]) == (0, N, 0)
    assert first["transform_ms"] > 0
    assert again["transform_ms"] == 0  # every record was found stored: none was transformed
    assert lambda_env.count("user_logins") == 1 + N


class _BrokenSecondChunk(ReadyRows):
    """A caller whose transform raises (a bug) while the COPY is streaming its second chunk."""

    def chunks(self, stored: Any) -> Iterator[Sequence[LoginRow]]:
        rows = list(next(super().chunks(stored)))
        yield rows[: len(rows) // 2]
        raise RuntimeError("a bug in the transform")


def test_a_bug_inside_the_stream_commits_nothing_and_the_connection_carries_on(
    warm: Invoke, lambda_env: TestDB
) -> None:
    store = handler.get_runtime().store
    rows = [
        LoginRow(f"u{i}", "ios", f"k1:ip{i}", f"k1:dev{i}", None, 1_000_000, "2026-11-30", f"bug-{i}")
        for i in range(50)
    ]
    reject = RejectRow("bug-reject", "not_json", "body is not valid JSON", "sealed", None, None)

    with pytest.raises(RuntimeError, match="a bug in the transform"):
        store.write_batch(_BrokenSecondChunk(rows, [reject]))

    assert lambda_env.count("user_logins", "message_id LIKE 'bug-%'") == 0
    assert lambda_env.count("user_logins_rejected") == 0
    result = store.write_batch(ReadyRows(rows, [reject]))  # the same connection, still in step
    assert (result.inserted, result.duplicates, result.rejected) == (50, 0, 1)
    assert lambda_env.count("user_logins", "message_id LIKE 'bug-%'") == 50


def test_a_row_the_database_refuses_in_a_later_chunk_is_rejected_alone(
    warm: Invoke, lambda_env: TestDB
) -> None:
    store = handler.get_runtime().store
    rows = [
        LoginRow(f"u{i}", "ios", f"k1:ip{i}", f"k1:dev{i}", "RU", 1_000_000, "2026-11-30", f"ref-{i}")
        for i in range(30)
    ]
    rows[27] = rows[27]._replace(create_date="2026-02-30")  # no such day: PostgreSQL refuses it
    refusals: list[tuple[str, str]] = []

    def on_refused(row: LoginRow, err: RowRefusedError) -> RejectRow:
        refusals.append((row.message_id, err.sqlstate))
        return RejectRow(row.message_id, "db_rejected", "refused", "sealed", None, None)

    class TwoChunks(ReadyRows):
        def chunks(self, stored: Any) -> Iterator[Sequence[LoginRow]]:
            yield rows[:15]
            yield rows[15:]

    result = store.write_batch(TwoChunks(rows, (), on_refused))

    assert (result.inserted, result.rejected, result.refused) == (29, 1, 1)
    assert refusals == [("ref-27", "22008")]
    assert lambda_env.count("user_logins", "message_id LIKE 'ref-%'") == 29
    assert lambda_env.count("user_logins_rejected", "message_id = 'ref-27'") == 1
