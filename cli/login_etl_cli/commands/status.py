"""``login-etl status``: its options, help, examples and run (the reading and the verdict: ``status``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import argtypes
from ..errors import CliError
from ._common import EXIT_OK, add_command

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "status",
        "an overview from the database (and the queue): keeping up, falling behind, or stuck",
        "Per hour for the last 24 hours (or per day with --days N), from the database: rows\n"
        "inserted, records rejected by reason, and the latest create_date. With --queue-url, the\n"
        "queue's and its DLQ's depth and the age of the oldest message (a CloudWatch metric).\n"
        "Ends with a one-line verdict (rules: docs/operations.md). Reads no PII column. Needs\n"
        "DATABASE_URL (or DB_SECRET_ARN); no PII key.",
        "examples:\n"
        "  login-etl status\n"
        "  login-etl status --days 7 --json\n"
        "  login-etl status --queue-url $Q --endpoint-url http://localhost:4566",
        func=run,
    )
    parser.add_argument(
        "--days",
        type=argtypes.days,
        metavar="N",
        help="per day for the last N days (default: per hour, 24 h)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    argtypes.add_queue_options(
        parser, required=False, queue_help="also read this queue, its DLQ and its oldest message age"
    )


def run(args: argparse.Namespace) -> int:
    from login_etl.sources import DbSource

    from ..status import collect, queue_reader, render, to_json

    if args.endpoint_url and not args.queue_url:
        raise CliError("--endpoint-url goes with --queue-url")
    reader = None
    if args.queue_url:
        import boto3

        from ..aws import sqs_client

        sqs = sqs_client(endpoint_url=args.endpoint_url, region=args.region, queue_url=args.queue_url)
        cloudwatch = boto3.client(
            "cloudwatch", endpoint_url=args.endpoint_url, region_name=sqs.meta.region_name
        )
        reader = queue_reader(sqs, cloudwatch, args.queue_url)
    store = DbSource.from_env().store()
    try:
        status = collect(store.query, days=args.days, queue_reader=reader)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps(to_json(status), indent=2) + "\n")
    else:
        encoding = (sys.stdout.encoding or "ascii").lower()
        sys.stdout.write(render(status, ascii_only="utf" not in encoding))
    return EXIT_OK
