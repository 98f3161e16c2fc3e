"""``PgStore.query`` cannot write, and ``PgStore.transaction`` commits whole or not at all, with one
reconnect where a stale connection shows (at BEGIN) and never a second run of the caller's block.

Real PostgreSQL; a stale connection is made for real, by terminating its backend from another
session, as a server restart or an idle timeout does to a frozen Lambda container.
"""

from __future__ import annotations

import pytest
from login_etl.errors import StoreError, TransientStoreError
from login_etl.store import PgStore, Transaction
from support.pg import TestDB, connect

#: Every kind of write a "read" could smuggle in; each must be refused and leave no trace.
WRITES = [
    "INSERT INTO user_logins (user_id, message_id) VALUES ('u', 'written')",
    "UPDATE user_logins SET user_id = 'changed'",
    "DELETE FROM user_logins",
    "TRUNCATE user_logins",
    "CREATE TABLE smuggled (x int)",
    "ALTER TABLE user_logins ADD COLUMN smuggled int",
    "WITH gone AS (DELETE FROM user_logins RETURNING 1) SELECT count(*) FROM gone",
    "DROP TABLE user_logins_staging",
    "GRANT SELECT ON user_logins TO PUBLIC",
    "CREATE TEMP TABLE scratch (x int)",
]


@pytest.fixture
def store(db: TestDB) -> PgStore:
    db.query("INSERT INTO user_logins (user_id, message_id) VALUES ('kept', 'm-kept')")
    return PgStore(lambda: connect(db.url))


def _kill_backend(db: TestDB, store: PgStore) -> None:
    """Terminate the store's server session, as a restart would, leaving its socket stale."""
    [[pid]] = store.query("SELECT pg_backend_pid()")
    [[done]] = db.query("SELECT pg_terminate_backend(:pid, 5000)", pid=pid)
    assert done is True


def _schema(db: TestDB) -> list[list[str]]:
    return db.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY 1, 2"
    )


@pytest.mark.parametrize("sql", WRITES)
def test_query_refuses_every_kind_of_write(db: TestDB, store: PgStore, sql: str) -> None:
    schema = _schema(db)
    with pytest.raises(StoreError, match="25006"):
        store.query(sql)
    assert db.query("SELECT user_id, message_id FROM user_logins") == [["kept", "m-kept"]]
    assert _schema(db) == schema
    assert store.query("SELECT count(*) FROM user_logins") == [[1]], "the store is usable after a refusal"


def test_a_transaction_commits_when_the_block_ends(db: TestDB, store: PgStore) -> None:
    with store.transaction() as tx:
        tx.run("INSERT INTO user_logins (user_id, message_id) VALUES ('u', 'm-1')")
        tx.run("DELETE FROM user_logins WHERE message_id = 'm-kept'")
    assert db.query("SELECT message_id FROM user_logins") == [["m-1"]]


def test_a_block_that_raises_leaves_nothing(db: TestDB, store: PgStore) -> None:
    with pytest.raises(KeyError), store.transaction() as tx:
        tx.run("DELETE FROM user_logins")
        raise KeyError("the caller failed half way")
    assert db.count("user_logins") == 1
    with store.transaction() as tx:  # and the connection is clean for the next one
        assert tx.run("SELECT count(*) FROM user_logins") == [[1]]


def test_a_connection_dead_before_begin_is_replaced_once(db: TestDB, store: PgStore) -> None:
    _kill_backend(db, store)
    runs = 0
    with store.transaction() as tx:
        runs += 1
        tx.run("DELETE FROM user_logins")
    assert runs == 1
    assert db.count("user_logins") == 0


def test_a_connection_lost_inside_the_block_fails_it_and_never_runs_it_again(
    db: TestDB, store: PgStore
) -> None:
    runs = 0
    with pytest.raises(TransientStoreError), store.transaction() as tx:
        runs += 1
        tx.run("DELETE FROM user_logins")
        _kill_backend_from_inside(db, tx)
        tx.run("SELECT 1")
    assert runs == 1
    assert db.count("user_logins") == 1, "nothing of the lost transaction was committed"
    assert store.query("SELECT count(*) FROM user_logins") == [[1]], "the next call reconnects"


def _kill_backend_from_inside(db: TestDB, tx: Transaction) -> None:
    [[pid]] = tx.run("SELECT pg_backend_pid()")
    [[done]] = db.query("SELECT pg_terminate_backend(:pid, 5000)", pid=pid)
    assert done is True


def test_query_also_gets_the_one_reconnect(db: TestDB, store: PgStore) -> None:
    _kill_backend(db, store)
    assert store.query("SELECT count(*) FROM user_logins") == [[1]]
