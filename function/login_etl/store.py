"""The PostgreSQL sink: migration, and the idempotent bulk write of one batch.

Happy path, whatever the batch size: BEGIN; one indexed lookup of which message ids are already
stored; ``COPY`` of the rest straight into ``user_logins``; one ``unnest`` INSERT of the rejects
(if any); COMMIT. A plain COPY is the cheapest way into Postgres: ``ON CONFLICT`` roughly doubles
the server's per-row cost, and a redelivered batch skips the COPY altogether (``make bench``).

The COPY is a stream: the batch hands over ``PendingRows``, whose rows are made chunk by chunk as
the COPY asks for them, so the server inserts one chunk while the caller transforms the next, and
the records already stored are never transformed at all.

The lookup and the COPY are not atomic against a concurrent writer of the same message (two
drainers after a visibility timeout expired): that race surfaces as a unique violation, and the
batch is then replayed through the always-safe path, COPY into ``user_logins_staging`` and one
``INSERT ... SELECT ... ON CONFLICT (message_id) DO NOTHING``. The staging table is permanent
rather than TEMP so nothing pins a connection behind RDS Proxy.

Everything is idempotent on ``message_id``, so replaying a batch after an ambiguous failure (the
connection dropped after COMMIT was sent) adds no row: it counts as duplicates.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import pg8000.native

from .dberrors import classify
from .errors import MigrationError, PrivilegeError, RowRefusedError, StoreError, TransientStoreError

__all__ = [
    "BatchSink",
    "LoginRow",
    "PendingRows",
    "PgStore",
    "ReadyRows",
    "RejectRow",
    "Store",
    "Transaction",
    "WriteResult",
    "text_array",
]

_T = TypeVar("_T")
_NULL: Final = "\\N"

#: pg_advisory_xact_lock key for migrations: "login-etl" squeezed into a bigint.
MIGRATION_LOCK_KEY: Final = 0x6C6F67696E2D6574

_COLUMNS: Final = (
    "user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, message_id"
)
# message ids are validated printable ASCII, so a newline can separate them in one text parameter
# (far cheaper to build than pg8000's encoding of a 10,000-element array), and in the one text
# value that comes back: pg8000 spends microseconds decoding each row of a result, and a
# redelivered batch finds every one of its ids.
_PRESENT: Final = (
    "SELECT string_agg(message_id, E'\\n') FROM user_logins"
    " WHERE message_id = ANY(string_to_array(:ids, E'\\n'))"
)
_COPY_DIRECT: Final = f"COPY user_logins ({_COLUMNS}) FROM STDIN"
_COPY_ROWS: Final = "COPY user_logins_staging FROM STDIN"
# One statement: the staging rows are deleted and inserted in the same command, so the batch
# costs one round trip however many rows it has, and staging is empty again before COMMIT.
_MOVE_ROWS: Final = """
WITH moved AS (DELETE FROM user_logins_staging RETURNING *)
INSERT INTO user_logins (user_id, device_type, masked_ip, masked_device_id, locale,
                         app_version, create_date, message_id)
SELECT user_id, device_type, masked_ip, masked_device_id, locale,
       app_version, create_date, message_id
FROM moved
ON CONFLICT (message_id) DO NOTHING
"""
_INSERT_REJECTS: Final = """
INSERT INTO user_logins_rejected (message_id, reason, detail, body_encrypted, sent_at, source_arn)
SELECT * FROM unnest(CAST(:message_id AS varchar[]), CAST(:reason AS varchar[]),
                     CAST(:detail AS text[]), CAST(:body AS text[]),
                     CAST(:sent_at AS timestamptz[]), CAST(:source_arn AS text[]))
ON CONFLICT (message_id) DO NOTHING
"""

# COPY text format: backslash, tab, newline and carriage return must be escaped.
_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _needs_escape(text: str) -> bool:
    """Whether ``text`` holds a character COPY text must escape: four substring scans in C, many
    times faster than one regex character class over the same text."""
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def text_array(values: Iterable[str | None]) -> str:
    """A PostgreSQL array literal of ``values``, for ``CAST(:param AS varchar[])``.

    pg8000's own list encoding leaves some strings unquoted, and PostgreSQL then reads an element
    spelled ``null`` (any case) as NULL: a message id "null" would fail the reject insert, and the
    batch with it. Here every element is quoted, so every string arrives verbatim.
    """
    quoted = [
        "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
    ]
    return "{" + ",".join(quoted) + "}"


class LoginRow(NamedTuple):
    """One ``user_logins`` row, in column order."""

    user_id: str
    device_type: str
    masked_ip: str
    masked_device_id: str
    locale: str | None
    app_version: int
    #: ISO ``YYYY-MM-DD`` (UTC): the row goes out as COPY text, so it is formatted once per day.
    create_date: str
    message_id: str


class RejectRow(NamedTuple):
    """One ``user_logins_rejected`` row; ``body_encrypted`` is already encrypted by the caller."""

    message_id: str
    reason: str
    detail: str
    body_encrypted: str
    sent_at: datetime | None
    source_arn: str | None


class WriteResult(NamedTuple):
    """What one committed batch did; every record of the batch is one of the three."""

    inserted: int
    duplicates: int
    #: Rejects written, including ``refused`` (the rows the database itself would not take).
    rejected: int
    refused: int


class PendingRows(Protocol):
    """One batch's rows, made while ``write_batch`` streams them into COPY.

    ``chunks`` may be called again after a dropped connection: it then starts over, and
    ``rejects`` is complete only once the last ``chunks`` has been exhausted.
    """

    def message_ids(self) -> Sequence[str]:
        """The id of every record of the batch, in order (rows and rejects alike)."""
        ...

    def chunks(self, stored: Collection[str]) -> Iterator[Sequence[LoginRow]]:
        """The rows of the records whose id is not in ``stored``, one chunk at a time."""
        ...

    def rejects(self) -> Sequence[RejectRow]:
        """The records the batch refused, encrypted (after ``chunks`` is exhausted)."""
        ...

    def refused(self, row: LoginRow, err: RowRefusedError) -> RejectRow:
        """The reject row for ``row`` after the database refused it."""
        ...


class ReadyRows:
    """``PendingRows`` over rows made beforehand: one chunk, for callers with a list in hand."""

    def __init__(
        self,
        rows: Sequence[LoginRow],
        rejects: Sequence[RejectRow] = (),
        on_refused: Callable[[LoginRow, RowRefusedError], RejectRow] | None = None,
    ) -> None:
        self._rows = rows
        self._rejects = rejects
        self._on_refused = on_refused

    def message_ids(self) -> list[str]:
        return [row[7] for row in self._rows] + [reject.message_id for reject in self._rejects]

    def chunks(self, stored: Collection[str]) -> Iterator[Sequence[LoginRow]]:
        yield [row for row in self._rows if row[7] not in stored] if stored else self._rows

    def rejects(self) -> Sequence[RejectRow]:
        return self._rejects

    def refused(self, row: LoginRow, err: RowRefusedError) -> RejectRow:
        if self._on_refused is None:
            raise err
        return self._on_refused(row, err)


def _copy_payload(rows: Sequence[LoginRow]) -> bytes:
    """COPY text for ``rows``, built column by column in C.

    A per-row f-string costs about a microsecond a row in bytecode; transposing the rows with
    ``zip`` and joining each one with a tab (``str.join`` through ``map``) does the same work
    without running any Python code per row. Escaping (``str.translate`` walks a dict per
    character) is needed only when a free-text field holds a backslash, tab, newline or carriage
    return, which real logins never do: one scan over all the free text decides. The masked columns
    (``key_id:base64url``), app_version and the ISO date never need escaping.
    """
    if not rows:
        return b""
    user_id, device_type, ip, device_id, locale, version, day, message_id = zip(*rows, strict=True)
    # str(None) is "None", which needs no escaping either: one C-level pass over every locale.
    if _needs_escape(
        "".join(user_id) + "".join(device_type) + "".join(map(str, locale)) + "".join(message_id)
    ):
        esc = _COPY_ESCAPES
        user_id, device_type, message_id = (
            tuple([value.translate(esc) for value in column]) for column in (user_id, device_type, message_id)
        )
        locale = tuple([None if value is None else value.translate(esc) for value in locale])
    locale = tuple([_NULL if value is None else value for value in locale])
    columns = (user_id, device_type, ip, device_id, locale, map(str, version), day, message_id)
    lines = map("\t".join, zip(*columns, strict=True))
    return ("\n".join(lines) + "\n").encode("utf-8")


def _first_of_each_id(rows: Sequence[LoginRow], seen: set[str]) -> list[LoginRow]:
    """The rows whose message id is not in ``seen``, once each; ``seen`` learns them."""
    kept = []
    for row in rows:
        if row[7] not in seen:
            seen.add(row[7])
            kept.append(row)
    return kept


class Transaction(Protocol):
    """The statements of one open transaction: what ``Store.transaction()`` yields."""

    def run(self, sql: str, **params: Any) -> list[list[Any]]: ...


class BatchSink(Protocol):
    """What ``process_batch`` needs of a store: one idempotent write of a whole batch."""

    def write_batch(self, pending: PendingRows) -> WriteResult: ...


class Store(BatchSink, Protocol):
    """What the handler and the operator commands need: the batch write, the schema, reads that
    cannot write, and a transaction for the rare operator write (``rejects --replay``, roles)."""

    def migrate(self) -> None: ...

    def query(self, sql: str, **params: Any) -> list[list[Any]]: ...

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]: ...

    def close(self) -> None: ...


class _Statements:
    """A ``Transaction`` over the store's one connection, counted like every other statement."""

    def __init__(self, run: Callable[..., list[list[Any]]]) -> None:
        self.run = run


class PgStore:
    """One lazily opened connection, reused across invocations and replaced once on a network error.

    Not thread-safe: a Lambda container runs one invocation at a time.
    """

    def __init__(self, connect: Callable[[], pg8000.native.Connection]) -> None:
        self._connect = connect
        self._conn: pg8000.native.Connection | None = None
        #: Statements sent since creation; tests assert it is constant per batch, whatever its size.
        self.round_trips = 0

    # --- connection ----------------------------------------------------------------------------
    def _connection(self) -> pg8000.native.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        """Drop the connection (if any); the next call reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            # The socket may already be dead; closing is best effort and there is nothing to report.
            with contextlib.suppress(Exception):
                conn.close()

    def _run(self, sql: str, stream: Iterable[bytes] | None = None, **params: Any) -> list[list[Any]]:
        conn = self._connection()
        self.round_trips += 1
        try:
            rows: list[list[Any]] | None = conn.run(sql, stream=stream, **params)
        except Exception as exc:
            raise classify(exc) from exc
        return rows or []

    def _row_count(self) -> int:
        assert self._conn is not None
        count: int = self._conn.row_count
        return max(count, 0)

    def _rollback(self) -> None:
        try:
            self._run("ROLLBACK")
        except StoreError:
            self.close()

    @contextlib.contextmanager
    def _transaction(
        self, begin: str = "BEGIN", *, reconnect_at_begin: bool = False
    ) -> Iterator[Transaction]:
        """One transaction: COMMIT when the block ends, else ROLLBACK (or drop a dead connection).

        ``reconnect_at_begin`` replaces a connection found dead at BEGIN, once: where a stale one
        shows, and before the block has done anything.
        """
        for attempt in (1, 2):
            try:
                self._run(begin)
                break
            except TransientStoreError as exc:
                self.close() if exc.network else self._rollback()
                if attempt == 2 or not exc.network or not reconnect_at_begin:
                    raise
        try:
            yield _Statements(self._run)
            self._run("COMMIT")
        except TransientStoreError as exc:
            self.close() if exc.network else self._rollback()
            raise
        except BaseException:
            self._rollback()
            raise

    def _with_one_reconnect(self, work: Callable[[], _T], begin: str = "BEGIN") -> _T:
        """Run ``work`` in a transaction; on a dropped connection, reconnect and run it once more.

        A stale connection is normal for Lambda (the container was frozen while the server or a
        NAT closed the socket), so one silent reconnect saves a whole redelivery cycle. Replaying
        is safe because every write is idempotent.
        """
        for attempt in (1, 2):
            try:
                with self._transaction(begin):
                    return work()
            except TransientStoreError as exc:
                if attempt == 2 or not exc.network:
                    raise
        raise AssertionError("unreachable")

    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """A transaction for a caller's own statements, with ``write_batch``'s one reconnect.

        The block is the caller's and may act outside the database (``rejects --replay`` sends to
        SQS), so it is never run twice: the one reconnect happens at BEGIN, where a stale
        connection shows, before the block starts. Inside the block, a dropped connection drops
        the transaction (nothing of it is committed) and the error propagates.
        """
        return self._transaction(reconnect_at_begin=True)

    # --- schema --------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the schema; idempotent and safe when several callers race."""
        schema = resources.files(__package__).joinpath("sql/schema.sql").read_text("utf-8")

        def work() -> None:
            self._run("SELECT pg_advisory_xact_lock(:key)", key=MIGRATION_LOCK_KEY)
            self._run(schema)

        try:
            self._with_one_reconnect(work)
        except (TransientStoreError, PrivilegeError):
            raise
        except StoreError as exc:
            raise MigrationError(f"migration failed: {exc}") from exc

    # --- the batch -----------------------------------------------------------------------------
    def write_batch(self, pending: PendingRows) -> WriteResult:
        """Insert the batch's rows and rejects in one transaction, isolating rows the database
        refuses.

        Raises ``TransientStoreError`` when nothing could be committed (the caller reports every
        record failed); any other ``StoreError`` is a bug and propagates.
        """
        ids = pending.message_ids()
        if not ids:
            return WriteResult(0, 0, 0, 0)

        def work() -> WriteResult:
            rows: list[LoginRow] = []  # every row streamed, for the safe path
            refused: list[tuple[int, RowRefusedError]] = []
            try:
                inserted = self._insert_rows(ids, pending, rows)
            except RowRefusedError:
                # Aborted: a concurrent writer won a race (unique violation) or a row is bad.
                # Start over on the safe path; if a row is still refused, bisect to find it.
                self._run("ROLLBACK")
                self._run("BEGIN")
                try:
                    inserted = self._upsert_rows(rows)
                except RowRefusedError as err:
                    self._run("ROLLBACK")
                    self._run("BEGIN")
                    inserted, refused = self._isolate(rows, err)
            all_rejects = [*pending.rejects(), *(pending.refused(rows[i], err) for i, err in refused)]
            self._insert_rejects(all_rejects)
            return WriteResult(
                inserted=inserted,
                duplicates=len(ids) - inserted - len(all_rejects),
                rejected=len(all_rejects),
                refused=len(refused),
            )

        return self._with_one_reconnect(work)

    def _insert_rows(self, ids: Sequence[str], pending: PendingRows, rows: list[LoginRow]) -> int:
        """The fast path: look up which ids are stored, then stream the rest of the batch through
        one COPY, skipping repeats within the batch. ``rows`` collects every row sent.

        The COPY is sent only once a chunk has a row, so a batch that is all duplicates or all
        rejects costs no COPY.
        """
        found = self._run(_PRESENT, ids="\n".join(ids))[0][0]
        stored: set[str] = set(found.split("\n")) if found else set()
        unique = len(set(ids)) == len(ids)  # the usual batch: no repeats to skip within it
        failure: list[BaseException] = []

        def fresh_chunks() -> Iterator[Sequence[LoginRow]]:
            seen = set(stored)
            for chunk in pending.chunks(stored):
                fresh = chunk if unique else _first_of_each_id(chunk, seen)
                if fresh:
                    rows.extend(fresh)
                    yield fresh

        def payload(chunks: Iterator[Sequence[LoginRow]]) -> Iterator[bytes]:
            # An exception inside pg8000's COPY loop would leave the protocol mid-COPY: stop the
            # stream instead, let the COPY end cleanly, and raise after it (the block rolls back).
            try:
                for chunk in chunks:
                    yield _copy_payload(chunk)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the COPY
                failure.append(exc)

        chunks = fresh_chunks()
        first = next(chunks, None)
        if first is None:
            return 0
        self._run(_COPY_DIRECT, stream=payload(itertools.chain([first], chunks)))
        if failure:
            raise failure[0]
        return len(rows)

    def _upsert_rows(self, rows: Sequence[LoginRow]) -> int:
        """The safe path: correct under any concurrency, at about twice the server's cost."""
        if not rows:
            return 0
        self._run(_COPY_ROWS, stream=[_copy_payload(rows)])
        self._run(_MOVE_ROWS)
        return self._row_count()

    def _isolate(
        self, rows: Sequence[LoginRow], first: RowRefusedError
    ) -> tuple[int, list[tuple[int, RowRefusedError]]]:
        """Bisect under savepoints: O(k log n) statements for k bad rows, only on this rare path."""
        inserted = 0
        refused: list[tuple[int, RowRefusedError]] = []
        everything = list(range(len(rows)))
        if len(everything) == 1:
            return 0, [(0, first)]
        half = len(everything) // 2
        stack = [everything[half:], everything[:half]]
        while stack:
            chunk = stack.pop()
            self._run("SAVEPOINT isolate")
            try:
                inserted += self._upsert_rows([rows[i] for i in chunk])
                self._run("RELEASE SAVEPOINT isolate")
            except RowRefusedError as err:
                self._run("ROLLBACK TO SAVEPOINT isolate")
                self._run("RELEASE SAVEPOINT isolate")
                if len(chunk) == 1:
                    refused.append((chunk[0], err))
                else:
                    half = len(chunk) // 2
                    stack += [chunk[half:], chunk[:half]]
        refused.sort(key=lambda pair: pair[0])
        return inserted, refused

    def _insert_rejects(self, rejects: Sequence[RejectRow]) -> None:
        if not rejects:
            return
        self._run(
            _INSERT_REJECTS,
            message_id=text_array([r.message_id for r in rejects]),
            reason=text_array([r.reason for r in rejects]),
            detail=text_array([r.detail for r in rejects]),
            body=text_array([r.body_encrypted for r in rejects]),
            sent_at=text_array([None if r.sent_at is None else r.sent_at.isoformat() for r in rejects]),
            source_arn=text_array([r.source_arn for r in rejects]),
        )

    # --- reads, for the CLI and tests ----------------------------------------------------------
    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        """Run one statement in a READ ONLY transaction (operator commands): PostgreSQL refuses
        any write, so a read can never change data by mistake. Writes go through ``transaction()``."""
        return self._with_one_reconnect(lambda: self._run(sql, **params), begin="BEGIN READ ONLY")
