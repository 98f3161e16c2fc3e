"""The migration: idempotent, safe when callers race, and upgrades an exercise-style table."""

from __future__ import annotations

import threading

from login_etl.store import PgStore
from support.pg import TestDB, connect

EXERCISE_DDL = """
CREATE TABLE user_logins(
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256),
    masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date)
"""


def migrate(db: TestDB) -> None:
    store = PgStore(lambda: connect(db.url))
    try:
        store.migrate()
    finally:
        store.close()


def columns(db: TestDB, table: str) -> list[list[object]]:
    return db.query(
        "SELECT column_name, data_type, character_maximum_length, is_nullable "
        "FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position",
        t=table,
    )


def test_fresh_database_gets_the_exercise_columns_plus_message_id_and_loaded_at(raw_db: TestDB) -> None:
    migrate(raw_db)
    assert columns(raw_db, "user_logins") == [
        ["user_id", "character varying", 128, "YES"],
        ["device_type", "character varying", 32, "YES"],
        ["masked_ip", "character varying", 256, "YES"],
        ["masked_device_id", "character varying", 256, "YES"],
        ["locale", "character varying", 32, "YES"],
        ["app_version", "integer", None, "YES"],
        ["create_date", "date", None, "YES"],
        ["message_id", "character varying", 128, "NO"],
        ["loaded_at", "timestamp with time zone", None, "YES"],  # `login-etl status` reads it
    ]
    assert [c[0] for c in columns(raw_db, "user_logins_rejected")] == [
        "message_id",
        "reason",
        "detail",
        "body_encrypted",
        "sent_at",
        "rejected_at",
        "source_arn",
    ]


def test_migration_is_idempotent(raw_db: TestDB) -> None:
    migrate(raw_db)
    raw_db.query("INSERT INTO user_logins (user_id, message_id) VALUES ('u', 'm1')")
    migrate(raw_db)
    assert raw_db.query("SELECT user_id, message_id FROM user_logins") == [["u", "m1"]]


def test_concurrent_migrations_do_not_collide(raw_db: TestDB) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(raw_db)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert raw_db.count("pg_tables", "tablename LIKE 'user_logins%'") == 3


def test_exercise_style_table_is_upgraded_with_legacy_ids(raw_db: TestDB) -> None:
    raw_db.query(EXERCISE_DDL)
    for i in range(3):
        raw_db.query(
            "INSERT INTO user_logins VALUES (:u, 'ios', 'x', 'y', NULL, 2003000, '2020-01-01')", u=f"old-{i}"
        )

    migrate(raw_db)
    migrate(raw_db)

    ids = [r[0] for r in raw_db.query("SELECT message_id FROM user_logins ORDER BY user_id")]
    assert len(ids) == len(set(ids)) == 3
    assert all(i.startswith("legacy:") and len(i) == len("legacy:") + 36 for i in ids)
    assert raw_db.query(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'user_logins_message_id_key'"
    ) == [[1]]
    assert columns(raw_db, "user_logins")[-2:] == [
        ["message_id", "character varying", 128, "NO"],
        ["loaded_at", "timestamp with time zone", None, "YES"],
    ]
    # The old rows' load time is unknown: NULL, not the migration's time.
    assert raw_db.count("user_logins", "loaded_at IS NULL") == 3
