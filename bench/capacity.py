"""A small capacity model: messages/s in; concurrency, DB connections, batch latency and cost out.

It reads the per-record costs that ``make bench`` measured (``bench/results.json``) and applies
Little's law to the SQS event source mapping:

- a batch holds ``b = min(batch_size, max(1, rate * window))`` messages, and never more than the
  6 MB payload allows (``largest_event_records`` in the results);
- its latency is ``L(b) = (fixed + per_record * b) * cpu_factor + round_trips * rtt``, where
  ``fixed`` and ``per_record`` are fitted on the measured handler at 10 and 10,000 records and
  ``cpu_factor = 1769 / memory_mb`` (Lambda gives one full vCPU at 1,769 MB, and the bench ran on
  one core);
- concurrency is ``C = rate * L(b) / b``, and each concurrent container holds one DB connection,
  so ``MaximumConcurrency`` on the mapping is the guard on database connections;
- the database must absorb ``rate * db_us_per_row`` CPU-seconds a second (the bench's idempotent
  insert cost per row, server and client together, so an upper bound);
- cost uses us-east-1 on-demand prices (x86): $0.20 per million requests and $0.0000166667 per
  GB-second for Lambda; $0.40 per million SQS requests, counting one SendMessage per message and
  one ReceiveMessage and one DeleteMessageBatch per 10 messages.

It is a model, not a promise: it ignores cold starts (one per new container; ``make bench``
measures one), the mapping's scaling speed, retries, and the database's own limits beyond CPU
(WAL volume, vacuum, connections). ``docs/scaling.md`` explains what to do at each rate.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SECONDS_PER_MONTH = 30 * 24 * 3600
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_S = 0.0000166667
SQS_PER_REQUEST = 0.40 / 1e6
FULL_VCPU_MB = 1769
#: The event source mapping's MaximumConcurrency can be set from 2 to 1,000 per mapping.
MAX_CONCURRENCY_PER_MAPPING = 1000


def load(path: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(path.read_text("utf-8"))
    insert = next(
        c for c in results["cases"] if c["case"] == "insert: ours (lookup + COPY)" and c["records"] == 10_000
    )
    return {
        **results["model"],
        "db_us_per_row": insert["per_record_us"],
        "largest_event_records": results["largest_event_records"],
        "measured_on": f"{results['machine']['cpu']}, {results['generated_at']}",
    }


def plan(rate: float, m: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    cap = min(args.batch_size, m["largest_event_records"])
    batch = max(1, min(cap, math.floor(rate * args.window)))
    cpu_factor = FULL_VCPU_MB / args.memory_mb
    latency_ms = (m["fixed_ms"] + m["per_record_us"] * batch / 1000) * cpu_factor + (
        (m["round_trips_per_batch"] or 4) * args.rtt_ms
    )
    concurrency = max(1, math.ceil(rate * latency_ms / 1000 / batch))
    invocations = rate / batch * SECONDS_PER_MONTH
    billed_s = math.ceil(latency_ms) / 1000  # Lambda bills in 1 ms steps
    lambda_cost = invocations * (LAMBDA_PER_REQUEST + billed_s * args.memory_mb / 1024 * LAMBDA_PER_GB_S)
    sqs_cost = rate * SECONDS_PER_MONTH * (1 + 2 / 10) * SQS_PER_REQUEST
    return {
        "rate": rate,
        "batch": batch,
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "db_connections": concurrency,
        "mappings": math.ceil(concurrency / MAX_CONCURRENCY_PER_MAPPING),
        "db_vcpus": rate * m["db_us_per_row"] / 1e6,
        "lambda_usd_month": lambda_cost,
        "sqs_usd_month": sqs_cost,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rates", nargs="*", type=float, default=[100, 10_000, 1_000_000], help="messages/s")
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--batch-size", type=int, default=1000, help="the mapping's BatchSize")
    parser.add_argument("--window", type=float, default=1.0, help="MaximumBatchingWindowInSeconds")
    parser.add_argument("--memory-mb", type=int, default=1024, help="the function's MemorySize")
    parser.add_argument("--rtt-ms", type=float, default=0.5, help="Lambda-to-database round trip")
    args = parser.parse_args()
    if not args.results.exists():
        print(f"error: {args.results} not found; run `make bench` first", file=sys.stderr)
        return 1
    m = load(args.results)
    print(
        f"per-record costs from {args.results.name} ({m['measured_on']}): fixed {m['fixed_ms']:.2f} ms "
        f"+ {m['per_record_us']:.1f} us/record a batch; DB insert {m['db_us_per_row']:.1f} us/row"
    )
    print(
        f"BatchSize {args.batch_size}, window {args.window:g} s, {args.memory_mb} MB "
        f"(cpu x{FULL_VCPU_MB / args.memory_mb:.2f}), RTT {args.rtt_ms:g} ms\n"
    )
    header = (
        "| msgs/s | batch | batch latency ms | concurrency = DB connections | mappings | DB vCPUs "
        "| Lambda $/month | SQS $/month |"
    )
    print(header)
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate in args.rates:
        p = plan(rate, m, args)
        print(
            f"| {rate:,.0f} | {p['batch']:,} | {p['latency_ms']:.1f} | {p['concurrency']:,} | "
            f"{p['mappings']} | {p['db_vcpus']:.2f} | {p['lambda_usd_month']:,.2f} | "
            f"{p['sqs_usd_month']:,.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
