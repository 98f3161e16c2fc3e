"""Operator tools: reveal masked values, migrate the schema, list and replay rejected records.

Each takes the part of the configuration it needs, as a ``login_etl.sources`` source or a
``Store``: the same code (connection, TLS, timeouts, secrets) as the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

from login_etl.errors import RevealError, StoreError
from login_etl.pii import KeyRing
from login_etl.rejected import open_body
from login_etl.sources import DbSource, KeySource
from login_etl.store import Store, Transaction, text_array

from .audit import Auditor
from .errors import json_string
from .roles import create_roles_sql, runtime_grants_sql
from .sender import Attributes, message_limit, send_bodies

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "REPLAY_ATTRIBUTE",
    "MigrateReport",
    "RejectSummary",
    "ReplayResult",
    "create_roles",
    "list_rejects",
    "migrate",
    "replay_rejects",
    "reveal_values",
    "show_reject",
]

#: Message attribute naming the rejected message a replayed one came from (the handler ignores it).
REPLAY_ATTRIBUTE: Final = "login_etl_replay_of"
_REPLAY_CHUNK: Final = 10


# --- reveal -------------------------------------------------------------------------------------
def reveal_values(values: Sequence[str], ring: KeyRing, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """Print one line per value on ``out``, in order; return how many did not decrypt.

    A value that does not decrypt prints an empty line (so line N still answers value N) and one
    ``error:`` line on ``err`` naming its position, never the value. A plaintext with any
    non-printable character (a line break, a terminal escape, VT, U+2028...) is printed as a JSON
    string with those escaped, so one value is always one line and cannot drive the terminal; so
    is one that starts with ``"``, so a line that starts with ``"`` is always JSON. ``as_json``
    prints every value that way. The caller writes the audit record first (``audit.Auditor``);
    the closing tally (how many revealed, how many failed; never values) goes to ``err``.
    """
    failed = 0
    for position, value in enumerate(values, start=1):
        try:
            _, plain = ring.reveal(value.strip())
        except RevealError as exc:
            failed += 1
            err.write(f"error: value {position}: {exc}\n")
            out.write("\n")
            continue
        if as_json or not plain.isprintable() or plain.startswith('"'):
            out.write(json_string(plain) + "\n")
        else:
            out.write(plain + "\n")
    out.flush()
    err.write(f"reveal: {len(values)} value(s), {len(values) - failed} revealed, {failed} failed\n")
    return failed


# --- database commands --------------------------------------------------------------------------
#: The tables ``sql/schema.sql`` creates, in the order a report names them.
SCHEMA_TABLES: Final = ("user_logins", "user_logins_rejected", "user_logins_staging")


@dataclass(frozen=True)
class MigrateReport:
    """What a migration changed, so ``migrate`` can say so instead of a blanket "up to date"."""

    created: tuple[str, ...]
    added_columns: tuple[str, ...]  # to an existing user_logins (an exercise-style or older table)

    def describe(self) -> str:
        done = []
        if self.created:
            done.append("created " + ", ".join(self.created))
        if self.added_columns:
            done.append(f"upgraded user_logins (added {', '.join(self.added_columns)})")
        return "; ".join(done) if done else "the schema was already up to date: nothing to do"


def _schema_state(store: Store) -> dict[str, set[str]]:
    """The schema's tables present in the current schema, each with its columns."""
    rows = store.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(CAST(:names AS text[]))",
        names=list(SCHEMA_TABLES),
    )
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(str(table), set()).add(str(column))
    return tables


def _schema_before(source: DbSource) -> dict[str, set[str]] | None:
    """The schema as it is, on a connection of its own; None when that fails, so that the
    migration itself then fails and says why in its own words."""
    peek = source.store()
    try:
        return _schema_state(peek)
    except StoreError:
        return None
    finally:
        peek.close()


def migrate(source: DbSource, *, runtime_role: str | None = None) -> MigrateReport:
    """Create or upgrade the schema: idempotent, and safe alongside running functions.

    With ``runtime_role``, the connected user (the table owner) then grants that role exactly the
    runtime privileges (``roles.RUNTIME_GRANTS``), revoking anything wider. Returns what changed.
    """
    before = _schema_before(source)
    store = source.store()
    try:
        store.migrate()
        after = _schema_state(store)
        if runtime_role is not None:
            with store.transaction() as tx:
                tx.run(runtime_grants_sql(runtime_role))
    finally:
        store.close()
    if before is None:  # not seen: say nothing rather than something untrue
        return MigrateReport(created=(), added_columns=())
    created = tuple(name for name in SCHEMA_TABLES if name in after and name not in before)
    added: tuple[str, ...] = ()
    if "user_logins" in before:
        added = tuple(sorted(after.get("user_logins", set()) - before["user_logins"]))
    return MigrateReport(created=created, added_columns=added)


def create_roles(store: Store, migration_role: str, runtime_role: str) -> None:
    """Create both roles and their schema rights, as the connected (administrator) user."""
    try:
        with store.transaction() as tx:
            tx.run(create_roles_sql(migration_role, runtime_role))
    finally:
        store.close()


@dataclass(frozen=True)
class RejectSummary:
    """One rejected record as an operator sees it: never its body."""

    message_id: str
    reason: str
    detail: str
    rejected_at: datetime
    sent_at: datetime | None


def list_rejects(store: Store, *, limit: int, reason: str | None) -> list[RejectSummary]:
    """The newest rejected records first."""
    where = "WHERE reason = :reason" if reason else ""
    params: dict[str, Any] = {"reason": reason} if reason else {}
    rows = store.query(
        f"SELECT message_id, reason, detail, rejected_at, sent_at FROM user_logins_rejected {where} "
        "ORDER BY rejected_at DESC, message_id LIMIT :limit",
        limit=limit,
        **params,
    )
    return [RejectSummary(*row) for row in rows]


def show_reject(store: Store, keys: KeySource, message_id: str, auditor: Auditor) -> str | None:
    """The decrypted body of one rejected record (None if there is none), audited before decrypting.

    Raises ``RevealError`` when the stored body does not open under the key ring for this row.
    """
    rows = store.query("SELECT body_encrypted FROM user_logins_rejected WHERE message_id = :m", m=message_id)
    if not rows:
        return None
    sealed: str = rows[0][0]
    auditor.record("show-reject", [sealed], message_id=message_id)
    return open_body(keys.keyring(), sealed, message_id)


@dataclass
class ReplayResult:
    """``replayed`` were sent and deleted from user_logins_rejected; ``failed`` were kept."""

    replayed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _pick_chunk(tx: Transaction, reason: str | None, skip: Iterable[str], size: int) -> list[list[Any]]:
    where = "AND reason = :reason" if reason else ""
    params: dict[str, Any] = {"reason": reason} if reason else {}
    # SKIP LOCKED: two operators replaying at once never send the same record twice.
    rows: list[list[Any]] = tx.run(
        "SELECT message_id, body_encrypted FROM user_logins_rejected "
        f"WHERE NOT (message_id = ANY(CAST(:skip AS varchar[]))) {where} "
        "ORDER BY rejected_at, message_id LIMIT :size FOR UPDATE SKIP LOCKED",
        skip=text_array(skip),
        size=size,
        **params,
    )
    return rows


def _replay_attributes(ids: Sequence[str]) -> Callable[[int], Attributes]:
    def attributes(index: int) -> Attributes:
        return {REPLAY_ATTRIBUTE: {"DataType": "String", "StringValue": ids[index]}}

    return attributes


def replay_rejects(
    store: Store,
    keys: KeySource,
    sqs: SQSClient,
    queue_url: str,
    *,
    limit: int | None,
    reason: str | None,
    auditor: Auditor,
) -> ReplayResult:
    """Decrypt rejected bodies and send them to ``queue_url``, oldest first, 10 per chunk.

    Each chunk is one transaction: lock the rows, send them, delete the rows SQS accepted, commit.
    A row is therefore never left behind after a confirmed send, and a crash before COMMIT leaves
    it in place (it may then be sent once more: at least once, like SQS itself). Rows that do not
    decrypt or that SQS refuses stay in the table, are reported, and are not retried in this run.
    Each replayed message carries the ``login_etl_replay_of`` attribute naming the original id.
    Each chunk's audit record (count and key ids, never a body) is written before it is decrypted.
    """
    replay = _Replay(keys.keyring(), sqs, queue_url, reason, auditor)
    result = replay.result
    try:
        while limit is None or result.replayed + result.failed < limit:
            left = None if limit is None else limit - result.replayed - result.failed
            with store.transaction() as tx:  # a failure rolls back: nothing of the chunk is deleted
                if not replay.chunk(tx, _REPLAY_CHUNK if left is None else min(_REPLAY_CHUNK, left)):
                    break
    finally:
        store.close()
    return result.done()


class ResultAccumulator(ReplayResult):
    """A ``ReplayResult`` being built."""

    def fail(self, message_id: str, why: str) -> None:
        self.failed += 1
        self.errors.append(f"{message_id}: {why}")

    def done(self) -> ReplayResult:
        return ReplayResult(self.replayed, self.failed, list(self.errors))


@dataclass
class _Replay:
    """One ``replay_rejects`` run: what every chunk needs, and what the chunks did so far."""

    ring: KeyRing
    sqs: SQSClient
    queue_url: str
    reason: str | None
    auditor: Auditor
    result: ResultAccumulator = field(default_factory=ResultAccumulator)
    #: Rows kept back (they did not decrypt, or SQS refused them): not retried in this run.
    skip: list[str] = field(default_factory=list)
    #: The queue's message size limit, read at the first chunk (``sender.message_limit``).
    limit: int | None = None

    def chunk(self, tx: Transaction, size: int) -> bool:
        """Lock, send and delete one chunk inside ``tx``; False when no row was left to replay."""
        rows = _pick_chunk(tx, self.reason, self.skip, size)
        if not rows:
            return False
        self.auditor.record("replay", [encrypted for _, encrypted in rows], reason=self.reason)
        ids: list[str] = []
        bodies: list[str] = []
        for message_id, encrypted in rows:
            try:
                body = open_body(self.ring, encrypted, message_id)
                body.encode("utf-8")  # lone surrogates cannot travel through SQS
            except (RevealError, UnicodeEncodeError):
                self.result.fail(message_id, "the stored body does not decrypt under the key ring")
                self.skip.append(message_id)
                continue
            ids.append(message_id)
            bodies.append(body)
        if self.limit is None:
            self.limit = message_limit(self.sqs, self.queue_url)
        sent = send_bodies(
            self.sqs, self.queue_url, bodies, attributes=_replay_attributes(ids), limit=self.limit
        )
        for failure in sent.failures:
            self.result.fail(ids[failure.index], f"SQS refused it: {failure.code}")
            self.skip.append(ids[failure.index])
        done = [ids[i] for i in sorted(sent.message_ids)]
        if done:
            tx.run(
                "DELETE FROM user_logins_rejected WHERE message_id = ANY(CAST(:ids AS varchar[]))",
                ids=text_array(done),
            )
        self.result.replayed += len(done)
        return True
