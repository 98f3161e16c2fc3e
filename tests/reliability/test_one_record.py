"""One record can never fail its neighbours: Hypothesis over whole SQS records, not only bodies.

Each generated record has a random body (valid logins, garbage, long integers, deep nesting),
wrapped in random SNS/EventBridge envelopes, random ``attributes`` (any SentTimestamp, or none,
or not an object), a random ``eventSourceARN`` and a random printable-ASCII ``messageId``. Against
the real PostgreSQL, the handler must answer with no failed record, account for every record in
its summary line (received = inserted + duplicates + rejected + failed), and store each record
exactly once, under its ``messageId`` verbatim, in exactly one of the two tables.
"""

# ruff: noqa: RUF001 - look-alike digits are the point of the SentTimestamp cases
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Invoke, LogCapture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from login_etl import handler
from login_etl.constants import MAX_SENT_TIMESTAMP_MS, Reason
from login_etl.store import text_array
from support.pg import TestDB

REASONS = {r.value for r in Reason}
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))

LOGIN = {
    "user_id": "neighbour",
    "app_version": "2.3.0",
    "device_type": "ios",
    "ip": "198.51.100.9",
    "locale": "PH",
    "device_id": "dev-000-neighbour",
}

# --- bodies --------------------------------------------------------------------------------------
#: Stands for an integer past Python's int-from-text limit (4300 digits); ``_dumps`` writes it out.
BIG = "\u0000big-integer\u0000"
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(BIG),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "\u0000", "a\u0000b", "1.2.3.4", "::1", "2.3.0", "null", "\ud800"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
logins = st.dictionaries(st.sampled_from([*LOGIN, "extra"]), json_values, max_size=4).map(
    lambda changes: {**LOGIN, **changes}
)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _dumps(obj: Any) -> str:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a broken producer would send them.
    return json.dumps(obj).replace(json.dumps(BIG), "9" * 5000)


def _wrap(text: str, layers: list[str]) -> str:
    for layer in layers:
        if layer == "sns":
            text = _dumps({"Type": "Notification", "Message": text})
        else:
            try:
                detail: Any = json.loads(text)
            except (ValueError, RecursionError):
                detail = text
            text = _dumps({"detail-type": "login", "detail": detail})
    return text


inner_bodies = st.one_of(
    logins.map(_dumps),
    json_values.map(_dumps),
    st.text(max_size=60),
    st.integers(min_value=2_000, max_value=200_000).map(_deep),
)
bodies = st.one_of(
    st.builds(_wrap, inner_bodies, st.lists(st.sampled_from(["sns", "eventbridge"]), max_size=3)),
    st.none(),
    st.integers(),
)

# --- the rest of the record ----------------------------------------------------------------------
sent_timestamps = st.one_of(
    st.integers(min_value=0, max_value=MAX_SENT_TIMESTAMP_MS).map(str),
    st.integers(min_value=MAX_SENT_TIMESTAMP_MS + 1, max_value=10**20).map(str),
    st.text(alphabet="0123456789²١٣𝟘", min_size=1, max_size=16),
    st.text(max_size=16),
    st.integers(),
    st.none(),
)
attributes = st.one_of(
    st.just({"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"}),
    st.fixed_dictionaries({"SentTimestamp": sent_timestamps}, optional={"x": json_values}),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
    json_values,
)
NEIGHBOUR_ID = "the-valid-neighbour"
message_ids = st.text(alphabet=PRINTABLE_ASCII, min_size=1, max_size=128).filter(lambda m: m != NEIGHBOUR_ID)
source_arns = st.one_of(
    st.just("arn:aws:sqs:us-east-1:123456789012:logins"),
    st.text(max_size=40),
    st.sampled_from(["arn\u0000nul", "\ud800", ""]),
    json_values,
)


@st.composite
def sqs_records(draw: st.DrawFn, message_id: str) -> dict[str, Any]:
    record: dict[str, Any] = {"messageId": message_id, "body": draw(bodies)}
    if draw(st.booleans()):
        record["attributes"] = draw(attributes)
    if draw(st.booleans()):
        record["eventSourceARN"] = draw(source_arns)
    if draw(st.booleans()):
        record["messageAttributes"] = draw(json_values)
    return record


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(message_ids, min_size=1, max_size=10, unique=True))
    records = [draw(sqs_records(mid)) for mid in ids]
    # A valid neighbour, always: it must land whatever the others do.
    neighbour = {"messageId": NEIGHBOUR_ID, "body": _dumps(LOGIN)}
    records.insert(draw(st.integers(0, len(records))), neighbour)
    return records


def _sent_date(record: dict[str, Any]) -> Any:
    """The create_date the record must get, or None when its SentTimestamp is absent."""
    attrs = record.get("attributes")
    raw = attrs.get("SentTimestamp") if isinstance(attrs, dict) else None
    return None if raw is None else datetime.fromtimestamp(int(raw) / 1000, UTC).date()


@pytest.fixture
def empty_tables(lambda_env: TestDB) -> Callable[[], None]:
    def truncate() -> None:
        lambda_env.query("TRUNCATE user_logins, user_logins_rejected")

    return truncate


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batches())
def test_any_batch_of_whole_records_is_accounted_for_and_never_fails(
    invoke_handler: Invoke,
    lambda_env: TestDB,
    logs: LogCapture,
    empty_tables: Callable[[], None],
    records: list[dict[str, Any]],
) -> None:
    empty_tables()
    logs.clear()

    response = invoke_handler({"Records": records})

    assert response == {"batchItemFailures": []}
    [summary] = logs.summaries()
    assert summary["received"] == len(records)
    assert summary["failed"] == 0
    assert summary["inserted"] + summary["duplicates"] + summary["rejected"] + summary["failed"] == len(
        records
    )
    # Every refusal here is predictable: none may reach the database's bisection (db_rejected) or
    # the catch-all for bugs (unprocessable).
    assert set(summary["rejected_by_reason"]) <= REASONS - {"db_rejected", "unprocessable"}
    assert sum(summary["rejected_by_reason"].values()) == summary["rejected"]

    ids = [r["messageId"] for r in records]
    inserted = dict(lambda_env.query("SELECT message_id, create_date FROM user_logins"))
    rejected = dict(lambda_env.query("SELECT message_id, reason FROM user_logins_rejected"))
    assert sorted([*inserted, *rejected]) == sorted(ids)  # each once, verbatim, in one table
    assert (summary["inserted"], summary["rejected"]) == (len(inserted), len(rejected))
    assert set(rejected.values()) <= REASONS
    assert NEIGHBOUR_ID in inserted
    for record in records:
        if record["messageId"] in inserted and (day := _sent_date(record)) is not None:
            assert inserted[record["messageId"]] == day
    # The array parameters carry the ids verbatim too ("null", quotes, backslashes, spaces).
    found = lambda_env.query(
        "SELECT count(*) FROM user_logins_rejected WHERE message_id = ANY(CAST(:ids AS varchar[]))",
        ids=text_array(ids),
    )
    assert found == [[len(rejected)]]


@pytest.mark.parametrize(
    "message_id",
    ["null", "NULL", "NuLl", ' "quoted" ', "back\\slash", "{braces}", "a,b", " ", "~" * 128, "\\N"],
)
def test_any_printable_ascii_message_id_is_stored_verbatim_as_row_or_reject(
    invoke_handler: Invoke, lambda_env: TestDB, message_id: str
) -> None:
    good = {"messageId": message_id, "body": _dumps(LOGIN)}
    bad_id = ("!" + message_id)[:128]
    bad = {"messageId": bad_id, "body": "not json"}
    assert invoke_handler({"Records": [good, bad]}) == {"batchItemFailures": []}
    assert lambda_env.query("SELECT message_id FROM user_logins") == [[message_id]]
    assert lambda_env.query("SELECT message_id FROM user_logins_rejected") == [[bad_id]]


def test_a_record_whose_handling_raises_is_its_own_reject(
    invoke_handler: Invoke, lambda_env: TestDB, logs: LogCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug on one record's path (here: masking raises for one value, both in the batch's masking
    call and alone, where the batch falls back to after such a failure) rejects that record only."""
    ring = handler.get_runtime().keys.keyring()
    real_mask = type(ring).mask
    real_mask_many = type(ring).mask_many

    def mask(self: Any, value: str, ad: bytes) -> str:
        if value == "203.0.113.66":
            raise ZeroDivisionError
        return real_mask(self, value, ad)

    def mask_many(self: Any, values: list[str], ad: bytes) -> list[str]:
        if "203.0.113.66" in values:
            raise ZeroDivisionError
        return real_mask_many(self, values, ad)

    monkeypatch.setattr(type(ring), "mask", mask)
    monkeypatch.setattr(type(ring), "mask_many", mask_many)
    bad = {"messageId": "m-bad", "body": _dumps({**LOGIN, "ip": "203.0.113.66"})}
    good = {"messageId": "m-good", "body": _dumps(LOGIN)}
    assert invoke_handler({"Records": [bad, good]}) == {"batchItemFailures": []}
    assert lambda_env.query("SELECT message_id FROM user_logins") == [["m-good"]]
    assert lambda_env.query("SELECT reason, detail FROM user_logins_rejected") == [
        ["unprocessable", "handling the record raised ZeroDivisionError"]
    ]
    [summary] = logs.summaries()
    assert summary["rejected_by_reason"] == {"unprocessable": 1}


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("²", "bad_attribute"),  # str.isdigit() says yes, int() says no
        ("١٧٠٠٠٠٠٠٠٠٠٠٠", "bad_attribute"),  # Arabic-Indic digits
        (str(MAX_SENT_TIMESTAMP_MS + 1), "bad_attribute"),  # past the year 9999
        ("999999999999999", "bad_attribute"),
        ("", "bad_attribute"),
        (str(MAX_SENT_TIMESTAMP_MS), None),
        ("0", None),
    ],
)
def test_an_unusable_sent_timestamp_rejects_that_record_only(
    invoke_handler: Invoke, lambda_env: TestDB, sent: str, reason: str | None
) -> None:
    record = {"messageId": "m-1", "body": _dumps(LOGIN), "attributes": {"SentTimestamp": sent}}
    good = {"messageId": "m-2", "body": _dumps(LOGIN)}
    assert invoke_handler({"Records": [record, good]}) == {"batchItemFailures": []}
    rejected = lambda_env.query("SELECT reason, detail FROM user_logins_rejected")
    if reason is None:
        assert rejected == []
        [[day]] = lambda_env.query("SELECT create_date FROM user_logins WHERE message_id = 'm-1'")
        assert day == datetime.fromtimestamp(int(sent) / 1000, UTC).date()
    else:
        assert rejected == [[reason, "SentTimestamp is not epoch milliseconds in the years 1970-9999"]]
    assert lambda_env.count("user_logins", "message_id = 'm-2'") == 1


UNSTORABLE_TEXT = [
    {"user_id": "nul\u0000"},
    {"device_type": "\u0000ios"},
    {"locale": "r\u0000u"},
    {"user_id": "\ud800"},
    {"locale": "\udfff"},
]


def test_refusals_validation_can_predict_never_reach_the_database(
    invoke_handler: Invoke, lambda_env: TestDB
) -> None:
    """Every class of text PostgreSQL cannot store is refused up front: a batch holding many such
    rows costs the same round trips as one holding none (no bisection)."""

    def batch(n_bad: int, tag: str) -> dict[str, Any]:
        records = [
            {"messageId": f"{tag}-{i}", "body": _dumps({**LOGIN, "user_id": f"u{i}"})} for i in range(200)
        ]
        for i in range(n_bad):
            records[i * 2]["body"] = _dumps({**LOGIN, **UNSTORABLE_TEXT[i % len(UNSTORABLE_TEXT)]})
        return {"Records": records}

    store = handler.get_runtime().store
    invoke_handler(batch(0, "warm"))
    counts = {}
    for n_bad, tag in ((1, "one"), (50, "fifty")):
        before = store.round_trips
        assert invoke_handler(batch(n_bad, tag)) == {"batchItemFailures": []}
        counts[n_bad] = store.round_trips - before
    assert counts[1] == counts[50], counts
    assert lambda_env.count("user_logins_rejected") == 51
    assert lambda_env.count("user_logins_rejected", "reason = 'bad_type'") == 51
