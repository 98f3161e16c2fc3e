"""``make bench``: the handler against the physical limit and the usual approach, in one run.

Against a real PostgreSQL (``DATABASE_URL`` when set, else an embedded pgserver PostgreSQL 16 on a
unix socket), in a throwaway database, it measures:

- **limit**: ``psql \\copy`` of the very rows the handler wrote, from a prepared file, into
  ``user_logins`` with its unique index (server-side COPY, then pg8000 COPY, when psql is absent);
- **naive**: Powertools ``BatchProcessor`` + pycryptodome ``MODE_SIV`` per field + one committed
  INSERT per record (``bench/naive.py``), at 10 and 1,000 records only (10,000 takes 10+ s);
- **ours**: the real ``lambda_handler`` on a pre-built Lambda SQS event, warm connection, fresh
  table per repetition, at 10, 1,000, 10,000 records and the largest event under Lambda's 6 MB
  payload limit; then **redelivery**: the same event again, every record already present;
- the insert alone (``PgStore.write_batch``) and the bulk-insert alternatives it was chosen over;
- the transform per record (parse, validate, mask, version), per masked field, and pycryptodome's;
- cold start (fresh process: import the handler and build its runtime, no DB connect) and peak
  RSS of a fresh process handling the largest event.

Every ratio is taken inside this one run; every time is the median of several repetitions. The
event is built outside the timed region; TRUNCATE happens between repetitions, untimed.
POWERTOOLS_METRICS_DISABLED=true and POWERTOOLS_LOG_LEVEL=WARNING, so log printing is not timed.
Prints a table and writes ``bench/results.json``. Each case is a module of ``cases/``; what they
share is ``harness.py``, the table and targets ``report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# harness first: it sets the environment Powertools and pycryptodome read at import.
from harness import (  # isort: skip
    BENCH_ENV,
    REPO,
    RESULTS,
    Bench,
    build_records,
    largest_event_size,
    say,
    scratch_database,
    server,
    synthetic_bodies,
)
from cases import fresh, limit, naive, ours, transform
from login_etl_cli.lambda_event import make_event
from report import machine, model, pycryptodome_backend, report, targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument(
        "--with-cffi", action="store_true", help="let pycryptodome use cffi, as the dev venv does"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()
    started = time.perf_counter()
    with server() as (server_url, source), scratch_database(server_url) as url:
        bench = Bench(url, args.quick)
        try:
            version = bench.admin.run("SHOW server_version")[0][0]
            say(f"bench: PostgreSQL {version} via {source}; building events ...")
            records = build_records(synthetic_bodies(10_000))
            largest = largest_event_size(records)
            sizes = [10, 1000, 10_000, largest]
            events = {n: dict(make_event(records[:n])) for n in sizes}
            say(f"bench: the largest event under 6 MB holds {largest:,} records")
            say("transform:")
            rows = transform.run(bench, records)
            say("ours (real lambda_handler, warm connection):")
            # Even with POWERTOOLS_METRICS_DISABLED, Metrics prints its EMF blob whenever 100
            # values pile up (and the ColdStart metric once): keep it out of the report.
            with contextlib.redirect_stdout(io.StringIO()):
                dumps = ours.run(bench, events)
            say("limit:")
            method = ""
            for n in (1000, 10_000):
                method = limit.run(bench, n, dumps[n])
            say("insert methods:")
            limit.run_insert_methods(bench, 10_000, dumps[10_000], rows)
            say("naive (BatchProcessor + pycryptodome SIV + INSERT per record), 10 and 1,000 only:")
            naive.run(bench, {n: events[n] for n in (10, 1000)}, dumps)
            say("fresh processes (the deployment package alone):")
            fresh.run_cold_start(bench, events[10])
            fresh.run_peak_rss(bench, {f"largest ({largest})": events[largest], "10000": events[10_000]})
            r = bench.results
            r["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            r["machine"] = machine()
            r["database"] = {"version": f"PostgreSQL {version}", "source": source}
            r["limit_method"] = method
            r["largest_event_records"] = largest
            r["settings"] = {**BENCH_ENV, "quick": args.quick, "pycryptodome_backend": pycryptodome_backend()}
            r["targets"] = targets(r, largest)
            r["model"] = model(r)
            r["elapsed_s"] = time.perf_counter() - started
        finally:
            bench.admin.close()
            shutil.rmtree(bench.tmp, ignore_errors=True)
    args.output.write_text(json.dumps(r, indent=2, default=str) + "\n")
    print(report(r))
    print(f"\n(wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}; "
          f"{r['elapsed_s']:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
