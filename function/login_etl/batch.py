"""One batch: transform every record, write all of them at once, and build the partial response.

The shape follows Powertools' "custom partial processor" (process each record, one bulk write),
with the two overlapped: the store streams the batch into one COPY and asks for its rows a chunk
at a time, so the transform of one chunk runs while the server inserts the one before (see
``_Pending``). Failure classes come from the types raised below us:

- ``RecordRejectedError`` (bad data, in the body, an envelope or an attribute): acknowledged,
  kept encrypted in ``user_logins_rejected``; anything else raised while handling one record is
  a bug, but it stays that record's: a reject with reason ``unprocessable``;
- ``RowRefusedError`` (the database refused one row): that row is rejected, the rest inserted;
- ``TransientStoreError``: nothing was committed, every record is reported failed and SQS
  redelivers it. Transient failures are batch-wide, so for a FIFO queue every later record of
  every message group is failed too, and order holds;
- anything else raised by the store is a bug and propagates.

Accounting always holds: received = inserted + duplicates + rejected + failed.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any, Final, cast

from .constants import AD_DEVICE_ID, AD_IP, MAX_MESSAGE_ID_CHARS, MAX_SENT_TIMESTAMP_MS, Reason
from .errors import MalformedEventError, RecordRejectedError, RowRefusedError, TransientStoreError
from .pii import KeyRing
from .records import Login, parse_logins
from .rejected import seal_body
from .store import BatchSink, LoginRow, RejectRow
from .types import BatchResponse, SQSRecord

__all__ = ["BatchOutcome", "check_event", "process_batch"]

_MS_PER_DAY: Final = 86_400_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


@dataclass
class BatchOutcome:
    """Counts and timings of one batch, plus the response to hand back to Lambda."""

    response: BatchResponse
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    transform_ms: float = 0.0
    insert_ms: float = 0.0
    batch_ms: float = 0.0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The fields of the one log line per batch (no PII: counts, codes and timings only)."""
        return {
            "received": self.received,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "transform_ms": round(self.transform_ms, 3),
            "insert_ms": round(self.insert_ms, 3),
            "batch_ms": round(self.batch_ms, 3),
            **({"error": self.error} if self.error else {}),
        }


def check_event(event: object) -> list[SQSRecord]:
    """The event's records, or ``MalformedEventError`` when it is not an SQS event.

    Failures can only be reported by ``messageId``, and AWS fails the whole batch on a bad one, so
    a record without a usable id makes the event itself untrustworthy. Usable means what
    ``user_logins.message_id`` stores verbatim: 1-128 printable ASCII characters, spaces, quotes
    and backslashes included.
    """
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise MalformedEventError("the event is not an SQS event: it has no Records list")
    records: list[SQSRecord] = event["Records"]
    if _ids_usable(records):
        return records
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise MalformedEventError(f"record {position} is not an object")
        mid = record.get("messageId")
        if (
            not isinstance(mid, str)
            or not 0 < len(mid) <= MAX_MESSAGE_ID_CHARS
            or not mid.isascii()
            or not mid.isprintable()
        ):
            raise MalformedEventError(f"record {position} has no usable messageId")
    return records


def _ids_usable(records: list[Any]) -> bool:
    """The check of ``check_event`` for the whole batch at once, in C calls: ``dict.get`` refuses
    anything that is not a dict, ``str.join`` anything that is not a string, and the joined text
    is ASCII and printable exactly when every id is. False sends the batch through the loop that
    names the first bad record."""
    try:
        ids: list[str] = list(map(dict.get, records, repeat("messageId")))  # type: ignore[arg-type]
        joined = "".join(ids)
    except TypeError:
        return False
    return not ids or (
        min(map(len, ids)) > 0
        and max(map(len, ids)) <= MAX_MESSAGE_ID_CHARS
        and joined.isascii()
        and joined.isprintable()
    )


class _Days:
    """SentTimestamp (ms) -> UTC date as ISO text, memoised by day: a batch rarely spans more than
    two days, and formatting a date per row was a fifth of the COPY text's cost."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def date_of(self, record: SQSRecord) -> str:
        """The row's ``create_date``; ``RecordRejectedError`` when SentTimestamp is unusable."""
        sent = _sent_ms(record)
        if sent is None:
            return datetime.now(UTC).date().isoformat()
        day = sent // _MS_PER_DAY
        found = self._cache.get(day)
        if found is None:
            found = self._cache[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        return found


def _sent_ms(record: SQSRecord) -> int | None:
    """SentTimestamp in epoch ms; None when absent (the processing date is used instead).

    A present but unusable value is the record's problem, not the batch's: ``bad_attribute``.
    Only ASCII digits count (``str.isdigit`` also accepts a superscript two or an Arabic-Indic
    digit), and only instants up to the year 9999, the last that Python's dates hold.
    """
    attributes: object = record.get("attributes")
    if attributes is None:
        return None
    if not isinstance(attributes, dict):
        raise RecordRejectedError(Reason.BAD_ATTRIBUTE.value, "attributes is not an object")
    raw = attributes.get("SentTimestamp")
    if raw is None:
        return None
    if isinstance(raw, str) and 0 < len(raw) <= 15 and raw.isascii() and raw.isdigit():
        ms = int(raw)
        if ms <= MAX_SENT_TIMESTAMP_MS:
            return ms
    raise RecordRejectedError(
        Reason.BAD_ATTRIBUTE.value, "SentTimestamp is not epoch milliseconds in the years 1970-9999"
    )


def _one_day(records: Sequence[SQSRecord]) -> str | None:
    """The ``create_date`` of every record when all carry a usable SentTimestamp of one UTC day,
    else None (the caller dates record by record).

    A batch is seconds of one queue, so this is the usual case, and it is decided in C calls:
    timestamps of one width compare as text as they do as numbers, so the smallest and the
    largest bound the rest, and if those two share a day, so does every one between.
    """
    try:
        plain = cast(Sequence[dict[str, Any]], records)
        attributes: list[dict[str, Any]] = list(map(dict.get, plain, repeat("attributes")))  # type: ignore[arg-type]
        sent: list[str] = list(map(dict.get, attributes, repeat("SentTimestamp")))  # type: ignore[arg-type]
        joined = "".join(sent)
    except TypeError:  # a record without attributes, or a timestamp that is not text
        return None
    width = len(sent[0]) if sent else 0
    if not (
        0 < width <= 15
        and min(map(len, sent)) == max(map(len, sent)) == width
        and joined.isascii()
        and joined.isdigit()
    ):
        return None
    first, last = int(min(sent)), int(max(sent))
    if last > MAX_SENT_TIMESTAMP_MS or first // _MS_PER_DAY != last // _MS_PER_DAY:
        return None
    return date.fromordinal(_EPOCH_ORDINAL + first // _MS_PER_DAY).isoformat()


def _sent_at(record: SQSRecord) -> datetime | None:
    """The reject row's ``sent_at``; an unusable SentTimestamp is simply not kept there."""
    try:
        ms = _sent_ms(record)
    except RecordRejectedError:
        return None
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _source_arn(record: SQSRecord) -> str | None:
    """The reject row's ``source_arn``, when it is text PostgreSQL can store (no NUL, valid
    UTF-8); a real ARN always is, and a hand-made event's garbage must not fail the insert."""
    arn = record.get("eventSourceARN")
    if not isinstance(arn, str) or "\x00" in arn:
        return None
    try:
        arn.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return arn


def _reject_row(record: SQSRecord, reason: str, detail: str, ring: KeyRing) -> RejectRow:
    body = record.get("body")
    encrypted = seal_body(ring, body if isinstance(body, str) else "", record["messageId"])
    return RejectRow(record["messageId"], reason, detail, encrypted, _sent_at(record), _source_arn(record))


def _masked(
    ring: KeyRing,
    logins: list[Login],
    dates: list[str],
    records: list[SQSRecord],
    reject: Callable[[SQSRecord, Exception], None],
) -> tuple[list[Login], list[str], list[SQSRecord], list[str], list[str]]:
    """Mask each field of the chunk in one call (see ``SivCipher.encrypt_many``).

    Gives the logins, dates and records that were masked, with their masked ips and device ids.
    Should the batch call ever raise (a bug), each login is masked alone, so that only the
    records that really fail are rejected, as when masking was per record.
    """
    try:
        ips = ring.mask_many([login[2] for login in logins], AD_IP)
        device_ids = ring.mask_many([login[3] for login in logins], AD_DEVICE_ID)
        return logins, dates, records, ips, device_ids
    except Exception:  # noqa: BLE001 - fall back to per-record masking, which isolates the failure
        kept: tuple[list[Login], list[str], list[SQSRecord], list[str], list[str]] = ([], [], [], [], [])
        for login, day, record in zip(logins, dates, records, strict=True):
            try:
                ip, device_id = ring.mask(login.ip, AD_IP), ring.mask(login.device_id, AD_DEVICE_ID)
            except Exception as err:  # noqa: BLE001 - this record only
                reject(record, err)
                continue
            for column, value in zip(kept, (login, day, record, ip, device_id), strict=True):
                column.append(value)  # type: ignore[attr-defined]
        return kept


def _dated_logins(
    records: Sequence[SQSRecord], reject: Callable[[SQSRecord, Exception], None]
) -> tuple[list[Login], list[str], list[SQSRecord]]:
    """Every valid record's ``Login`` and ``create_date``, and the records themselves; the others
    are rejected. A body's problem is reported before its SentTimestamp's."""
    parsed = parse_logins([record.get("body") for record in records])
    if records and set(map(type, parsed)) == {Login}:
        day = _one_day(records)
        if day is not None:  # the usual batch: every record valid, one day
            return cast(list[Login], parsed), [day] * len(records), list(records)
    logins: list[Login] = []
    dates: list[str] = []
    valid: list[SQSRecord] = []
    date_of = _Days().date_of
    for record, login in zip(records, parsed, strict=True):
        if not isinstance(login, Login):
            reject(record, login)
            continue
        try:
            day = date_of(record)
        except Exception as err:  # noqa: BLE001 - RecordRejectedError, or a bug: this record only
            reject(record, err)
            continue
        logins.append(login)
        dates.append(day)
        valid.append(record)
    return logins, dates, valid


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch.

    A batch allocates tens of thousands of containers (decoded bodies, logins, rows), none of them
    in a reference cycle, and every 700 allocations the collector walks the young ones; every few
    hundred thousand it walks every object in the process, the event included. Reference counting
    still frees everything; the few cycles a batch can make (a caught exception and its traceback)
    wait for the next collection after the batch.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def process_batch(records: Sequence[SQSRecord], ring: KeyRing, store: BatchSink) -> BatchOutcome:
    """Transform, write, and account for one batch. Raises only for bugs."""
    with _cyclic_gc_paused():
        return _process_batch(records, ring, store)


#: Records transformed per chunk of the COPY stream: enough that the batch-wide calls (one JSON
#: decode, one masking call per field) still amortise, few enough that the server's insert of
#: one chunk overlaps the transform of the next (``make bench`` measured 500 to 2,000).
CHUNK_RECORDS: Final = 1000


class _Pending:
    """The batch's rows for ``BatchSink.write_batch`` (``store.PendingRows``), transformed one
    chunk at a time as the store streams them into COPY, so the transform of a chunk overlaps
    the server's insert of the one before, and records already stored are not transformed."""

    def __init__(self, records: Sequence[SQSRecord], ring: KeyRing) -> None:
        self._records = records
        self._ring = ring
        self._rejects: list[RejectRow] = []
        self.rejected_by_reason: Counter[str] = Counter()
        #: Seconds spent transforming, over every chunk (and every restart).
        self.transform_s = 0.0

    def message_ids(self) -> list[str]:
        return [record["messageId"] for record in self._records]

    def chunks(self, stored: Collection[str]) -> Iterator[list[LoginRow]]:
        self._rejects.clear()  # a restart after a dropped connection starts over
        self.rejected_by_reason.clear()
        records = self._records
        if stored:  # a record already stored is a duplicate: it is not transformed again
            records = [record for record in records if record["messageId"] not in stored]
        for start in range(0, len(records), CHUNK_RECORDS):
            began = time.perf_counter()
            rows = self._rows(records[start : start + CHUNK_RECORDS])
            self.transform_s += time.perf_counter() - began
            yield rows

    def rejects(self) -> list[RejectRow]:
        return self._rejects

    def refused(self, row: LoginRow, err: RowRefusedError) -> RejectRow:
        record = next(record for record in self._records if record["messageId"] == row.message_id)
        detail = f"{err.column or 'row'}: database refused it (SQLSTATE {err.sqlstate})"
        self.rejected_by_reason[Reason.DB_REJECTED.value] += 1
        return _reject_row(record, Reason.DB_REJECTED.value, detail, self._ring)

    def _reject(self, record: SQSRecord, err: Exception) -> None:
        if isinstance(err, RecordRejectedError):
            reason, detail = err.reason, err.detail
        else:  # one record's bug must not fail its neighbours
            reason, detail = Reason.UNPROCESSABLE.value, f"handling the record raised {type(err).__name__}"
        self._rejects.append(_reject_row(record, reason, detail, self._ring))
        self.rejected_by_reason[reason] += 1

    def _rows(self, records: Sequence[SQSRecord]) -> list[LoginRow]:
        """The rows of ``records``, built by C calls alone (zip, and tuple.__new__ through map,
        which skips the NamedTuple's Python-level __new__); the others are rejected."""
        ring, reject = self._ring, self._reject
        logins, dates, row_records, ips, device_ids = _masked(ring, *_dated_logins(records, reject), reject)
        if not logins:
            return []
        user_ids, device_types, _, _, locales, versions = zip(*logins, strict=True)
        message_ids = [record["messageId"] for record in row_records]
        columns = zip(
            user_ids, device_types, ips, device_ids, locales, versions, dates, message_ids, strict=True
        )
        return list(map(tuple.__new__, repeat(LoginRow), columns))


def _process_batch(records: Sequence[SQSRecord], ring: KeyRing, store: BatchSink) -> BatchOutcome:
    started = time.perf_counter()
    outcome = BatchOutcome(response={"batchItemFailures": []}, received=len(records))
    pending = _Pending(records, ring)
    try:
        result = store.write_batch(pending)
    except TransientStoreError as err:
        outcome.failed = len(records)
        outcome.error = str(err)
        outcome.response["batchItemFailures"] = [{"itemIdentifier": r["messageId"]} for r in records]
    else:
        outcome.inserted = result.inserted
        outcome.duplicates = result.duplicates
        outcome.rejected = result.rejected
        outcome.rejected_by_reason = pending.rejected_by_reason
    outcome.batch_ms = (time.perf_counter() - started) * 1000
    outcome.transform_ms = pending.transform_s * 1000
    outcome.insert_ms = outcome.batch_ms - outcome.transform_ms
    return outcome
