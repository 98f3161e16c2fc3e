"""``login-etl sqs-local``: its options, help, examples and run (the services: ``sqs_local``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import argtypes
from ._common import EXIT_OK, add_command, terminate_like_ctrl_c

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "sqs-local",
        "run a local SQS API (+ PostgreSQL, key) to try send/drain/rejects by hand",
        "Start moto's SQS API on 127.0.0.1 with a queue and its DLQ (redrive after 5 receives), an\n"
        "embedded PostgreSQL unless DATABASE_URL is set, and an ephemeral PII key unless PII_KEYS is\n"
        "set; print the export lines for another shell and example commands, then wait. Ctrl-C or\n"
        "SIGTERM stops everything and deletes the embedded database. Needs no Docker or AWS.",
        "examples:\n"
        "  login-etl sqs-local                       # then paste its export lines into another shell\n"
        "  login-etl sqs-local --port 4566           # a fixed port instead of a free one",
        func=run,
    )
    parser.add_argument(
        "--port",
        type=argtypes.port,
        default=0,
        metavar="N",
        help="port for the SQS API (default: a free one)",
    )


def run(args: argparse.Namespace) -> int:
    from ..sqs_local import SqsLocalOptions, run_sqs_local

    terminate_like_ctrl_c()
    try:
        run_sqs_local(SqsLocalOptions(port=args.port), sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        sys.stderr.write("sqs-local: stopped; everything it started is gone\n")
    return EXIT_OK
