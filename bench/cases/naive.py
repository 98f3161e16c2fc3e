"""**naive**: the tutorial handler (``naive.py``) on the same events, same rows."""

from __future__ import annotations

from typing import Any

from harness import Bench, build_records, synthetic_bodies, timed
from login_etl_cli.lambda_event import make_event


def run(bench: Bench, events: dict[int, dict[str, Any]], dumps: dict[int, bytes]) -> None:
    from login_etl_cli.context import LocalContext
    from naive import NaiveHandler

    naive = NaiveHandler(bench.url, "k1", bench.key)
    try:
        naive(dict(make_event(build_records(synthetic_bodies(10, seed=99), seed=98))), LocalContext())
        for n, event in events.items():
            reps = 9 if n <= 10 else 3

            def call(e: dict[str, Any] = event) -> Any:
                return naive(e, LocalContext())

            times = timed(call, reps, setup=bench.truncate)
            # Same rows, byte for byte, as the handler wrote: a like-for-like comparison.
            same = sorted(bench.dump_rows().splitlines()) == sorted(dumps[n].splitlines())
            assert same, "naive rows differ from ours"
            bench.case("naive", n, times, same_rows_as_ours=same)
    finally:
        naive.close()
