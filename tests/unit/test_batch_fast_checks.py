"""The batch-wide checks in C calls decide exactly as the record-by-record code they stand in for.

``batch._ids_usable`` answers for the whole event what ``check_event``'s loop answers record by
record, and ``batch._one_day`` gives a date only when every record's own date is that day.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl.batch import _Days, _ids_usable, _one_day
from login_etl.constants import MAX_MESSAGE_ID_CHARS, MAX_SENT_TIMESTAMP_MS
from login_etl.errors import RecordRejectedError

DAY_MS = 86_400_000

# Message ids: mostly usable, with every way of not being one.
usable_ids = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=MAX_MESSAGE_ID_CHARS
)
unusable_ids = st.one_of(
    st.just(""),
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=MAX_MESSAGE_ID_CHARS + 1, max_size=140
    ),
    st.sampled_from(["tab\there", "new\nline", "nul\x00", "del\x7f", "é", "²", "\u2028"]),
    st.none(),
    st.integers(),
)
records_with_ids = st.one_of(
    st.builds(lambda mid: {"messageId": mid}, st.one_of(usable_ids, usable_ids, unusable_ids)),
    st.just({}),
    st.sampled_from([[], "record", None, 7]),
)


def _loop_accepts(records: list[Any]) -> bool:
    """``check_event``'s record-by-record rule."""
    for record in records:
        if not isinstance(record, dict):
            return False
        mid = record.get("messageId")
        if not (
            isinstance(mid, str)
            and 0 < len(mid) <= MAX_MESSAGE_ID_CHARS
            and mid.isascii()
            and mid.isprintable()
        ):
            return False
    return True


@settings(max_examples=400)
@given(st.lists(records_with_ids, max_size=6))
def test_the_joined_id_check_decides_as_the_loop(records: list[Any]) -> None:
    assert _ids_usable(records) == _loop_accepts(records)


# SentTimestamps: digit strings around day boundaries, of one or mixed widths, and every kind of
# value the record-by-record code refuses or treats as absent.
def _ms_text(ms: int, width: int) -> str:
    return str(ms).rjust(width, "0")


near_midnight = st.builds(
    lambda day, offset: day * DAY_MS + offset,
    st.integers(0, MAX_SENT_TIMESTAMP_MS // DAY_MS),
    st.sampled_from([0, 1, DAY_MS // 2, DAY_MS - 1, DAY_MS, DAY_MS + 1]),
).filter(lambda ms: ms <= MAX_SENT_TIMESTAMP_MS + DAY_MS)
good_sent = st.builds(_ms_text, near_midnight, st.sampled_from([13, 13, 15, 14]))
bad_sent = st.sampled_from(["", "12a", "²", "١٧٦٤", "1" * 16, " 1764000000000", "-1", 1764000000000, None])
attributes = st.one_of(
    st.builds(lambda s: {"SentTimestamp": s}, st.one_of(good_sent, good_sent, good_sent, bad_sent)),
    st.just({}),
    st.just(None),
    st.just("not an object"),
)
dated_records = st.builds(
    lambda attrs: {"messageId": "m"} if attrs is ... else {"messageId": "m", "attributes": attrs},
    st.one_of(attributes, st.just(...)),
)


def _own_date(record: dict[str, Any]) -> str | None:
    """The record's date by the record-by-record code; None when it refuses the timestamp."""
    try:
        return _Days().date_of(record)  # type: ignore[arg-type]
    except RecordRejectedError:
        return None


@st.composite
def batches_around_midnight(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Records of one width whose timestamps straddle a midnight (or not), some of them spoilt."""
    # The last midnight starts the year 10000: past the last instant the contract accepts.
    last = MAX_SENT_TIMESTAMP_MS // DAY_MS + 1
    midnight = draw(st.one_of(st.integers(1, last), st.just(last))) * DAY_MS
    width = draw(st.sampled_from([13, 15]))
    offsets = draw(st.lists(st.sampled_from([-DAY_MS, -2, -1, 0, 1, DAY_MS - 1]), min_size=1, max_size=6))
    records = [
        {"messageId": "m", "attributes": {"SentTimestamp": _ms_text(midnight + o, width)}} for o in offsets
    ]
    spoil = draw(st.lists(st.tuples(st.integers(0, len(records) - 1), dated_records), max_size=2))
    for at, record in spoil:
        records[at] = record
    return records


@settings(max_examples=600)
@given(st.one_of(st.lists(dated_records, min_size=1, max_size=6), batches_around_midnight()))
def test_one_day_is_given_only_when_it_is_every_records_own_date(records: list[dict[str, Any]]) -> None:
    day = _one_day(records)  # type: ignore[arg-type]
    if day is not None:
        assert all(_own_date(record) == day for record in records)


#: Days whose every instant has 13 digits in ms, as SQS's SentTimestamp has until the year 2286.
thirteen_digit_days = st.integers(10**12 // DAY_MS + 1, 10**13 // DAY_MS - 1)


@given(thirteen_digit_days, st.lists(st.integers(0, DAY_MS - 1), min_size=1, max_size=20))
def test_a_batch_within_one_day_takes_the_fast_path(day: int, offsets: list[int]) -> None:
    records = [{"messageId": "m", "attributes": {"SentTimestamp": str(day * DAY_MS + o)}} for o in offsets]
    expected = _own_date(records[0])
    assert expected is not None
    assert _one_day(records) == expected  # type: ignore[arg-type]
