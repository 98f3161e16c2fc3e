"""The ``loaded_at`` upgrade: added once, and a routine migration never waits for a batch."""

from __future__ import annotations

import threading

from integration.test_migrate import migrate
from support.pg import TestDB, connect


def test_a_routine_migration_does_not_wait_for_an_open_batch(db: TestDB) -> None:
    """Cold starts migrate while other containers write: the guarded upgrade takes no lock on
    user_logins once done (an ALTER TABLE or CREATE INDEX would queue behind the open batch)."""
    batch = connect(db.url)
    batch.run("BEGIN")
    batch.run("INSERT INTO user_logins (user_id, message_id) VALUES ('u', 'in-flight')")
    done = threading.Event()

    def migrate_then_say_so() -> None:
        migrate(db)
        done.set()

    worker = threading.Thread(target=migrate_then_say_so, daemon=True)
    try:
        worker.start()
        finished = done.wait(timeout=20)
    finally:
        batch.run("ROLLBACK")
        batch.close()
        worker.join(timeout=30)
    assert finished, "the migration waited for the open batch's lock"


def test_the_upgrade_adds_the_column_and_the_brin_index_once(db: TestDB) -> None:
    migrate(db)
    indexes = db.query(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE tablename = 'user_logins' AND indexname LIKE '%loaded%'"
    )
    assert len(indexes) == 1
    name, definition = indexes[0]
    assert name == "user_logins_loaded_at_brin" and "USING brin (loaded_at)" in definition
    db.query("INSERT INTO user_logins (user_id, message_id) VALUES ('u', 'm')")
    assert db.count("user_logins", "loaded_at IS NOT NULL AND loaded_at <= now()") == 1
