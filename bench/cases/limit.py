"""**limit**: ``psql \\copy`` of the handler's rows, and the bulk-insert alternatives."""

from __future__ import annotations

import io
import os
import subprocess
from typing import Any

import pg8000.native
from harness import COLUMNS, Bench, connect, median, timed


def run(bench: Bench, n: int, payload: bytes) -> str:
    path = bench.tmp / f"rows_{n}.copy"
    path.write_bytes(payload)
    os.chmod(path, 0o644)
    reps = bench.reps(n) + 4
    psql = bench.psql_path()
    if psql is not None:
        lines = ["\\set ON_ERROR_STOP on", "\\timing on"]
        for _ in range(reps):
            lines += ["TRUNCATE user_logins;", f"\\copy user_logins ({COLUMNS}) FROM '{path}'"]
        out = subprocess.run(
            [psql, "-X", "-q", "-d", bench.url, "-f", "-"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ms = [float(line.split()[1]) for line in out.splitlines() if line.startswith("Time:")]
        times = [t / 1000 for t in ms[1::2]]  # TRUNCATE, \copy, TRUNCATE, \copy, ...
        method = "psql \\copy from a prepared file (psql's own \\timing)"
    else:
        try:
            sql = f"COPY user_logins ({COLUMNS}) FROM '{path}'"
            times = timed(lambda: bench.admin.run(sql), reps, setup=bench.truncate)
            method = "server-side COPY from a prepared file (no psql found)"
        except pg8000.native.DatabaseError:
            times = _pg8000_copy_times(bench, payload, reps)
            method = "pg8000 COPY FROM STDIN (no psql, server cannot read the file)"
    assert bench.count() == n
    bench.case("limit", n, times, method=method)
    return method


def _pg8000_copy_times(bench: Bench, payload: bytes, reps: int) -> list[float]:
    sql = f"COPY user_logins ({COLUMNS}) FROM STDIN"
    return timed(lambda: bench.admin.run(sql, stream=io.BytesIO(payload)), reps, setup=bench.truncate)


def run_insert_methods(bench: Bench, n: int, payload: bytes, rows: list[Any]) -> None:
    """The insert alone, and the alternatives: same rows, same table, same index, warm connection."""
    from login_etl import handler

    store = handler.get_runtime().store
    reps = bench.reps(n)

    from login_etl.store import ReadyRows

    ours = timed(lambda: store.write_batch(ReadyRows(rows)), reps, setup=bench.truncate)
    assert bench.count() == n
    bench.case(
        "insert: ours (lookup + COPY)", n, ours, note="PgStore.write_batch: BEGIN, lookup, COPY, COMMIT"
    )
    again = timed(lambda: store.write_batch(ReadyRows(rows)), reps)
    bench.case("insert: ours, all duplicates", n, again)
    bench.case("insert: pg8000 COPY direct", n, _pg8000_copy_times(bench, payload, reps), idempotent=False)

    # The safe path, taken only after losing a race to a concurrent writer (or to isolate a
    # refused row): COPY into staging, then one move with ON CONFLICT, on a warm connection.
    conn = connect(bench.url)
    try:
        from login_etl.store import _COPY_ROWS, _MOVE_ROWS, _copy_payload

        def safe_batch() -> None:
            conn.run("BEGIN")
            conn.run(_COPY_ROWS, stream=[_copy_payload(rows)])
            conn.run(_MOVE_ROWS)
            conn.run("COMMIT")

        bench.case(
            "insert: safe path (staging + ON CONFLICT)",
            n,
            timed(safe_batch, reps, setup=bench.truncate),
            note="taken only after a lost race",
        )
        assert bench.count() == n
        # Client-side formatting of the COPY text (included in ours, excluded from the limit).
        bench.results["copy_payload_ms"] = {
            "records": n,
            "store_copy_payload": median(timed(lambda: _copy_payload(rows), reps + 4)) * 1000,
        }
        cols = list(zip(*rows, strict=True))
        unnest = (
            f"INSERT INTO user_logins ({COLUMNS}) SELECT * FROM unnest("
            "CAST(:a AS varchar[]), CAST(:b AS varchar[]), CAST(:c AS varchar[]), "
            "CAST(:d AS varchar[]), CAST(:e AS varchar[]), CAST(:f AS int[]), "
            "CAST(:g AS date[]), CAST(:h AS varchar[])) ON CONFLICT (message_id) DO NOTHING"
        )
        params = dict(zip("abcdefgh", (list(c) for c in cols), strict=True))
        times = timed(lambda: conn.run(unnest, **params), reps, setup=bench.truncate)
        assert bench.count() == n
        bench.case("insert: unnest arrays", n, times, idempotent=True)
        single = (
            f"INSERT INTO user_logins ({COLUMNS}) VALUES (:a, :b, :c, :d, :e, :f, :g, :h) "
            "ON CONFLICT (message_id) DO NOTHING"
        )

        def per_row() -> None:
            conn.run("BEGIN")
            for r in rows:
                conn.run(single, **dict(zip("abcdefgh", r, strict=True)))
            conn.run("COMMIT")

        times = timed(per_row, 3, setup=bench.truncate)
        assert bench.count() == n
        bench.case("insert: one INSERT per row", n, times, idempotent=True, note="one transaction")
    finally:
        conn.close()
