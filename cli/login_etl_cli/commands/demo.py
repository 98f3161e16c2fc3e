"""``login-etl demo``: its options, help and examples; the run itself is ``login_etl_cli.demo``."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from .. import argtypes
from ._common import EXIT_FAILED, EXIT_OK, add_command, synth_options, terminate_like_ctrl_c

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "demo",
        "run the whole job locally: embedded Postgres + SQS API, exercise data, summary",
        "Start an embedded PostgreSQL (or use DATABASE_URL) and an in-process SQS API (moto), create\n"
        "a queue and its DLQ, send the exercise data (or synthetic logins), drain the queue through\n"
        "the real handler, and print what landed. Needs no Docker, network or AWS account. A fresh\n"
        "PII key is generated for the run and printed: it is ephemeral. Everything started is\n"
        "stopped on exit, Ctrl-C included.",
        "examples:\n"
        "  login-etl demo\n"
        "  login-etl demo --synthetic 100000 --batch-size 100 --window 1\n"
        "  login-etl demo --file my_logins.ndjson\n"
        "  DATABASE_URL=postgresql://me@localhost/logins login-etl demo",
        func=run,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, metavar="F.ndjson", help="bodies to send, one per line")
    source.add_argument(
        "--synthetic",
        type=argtypes.synthetic,
        metavar="N",
        help=f"N generated logins (at most {argtypes.MAX_SYNTHETIC:,})",
    )
    synth_options(parser, invalid=0.01, duplicate=0.05)
    parser.add_argument(
        "--batch-size", type=argtypes.batch_size, default=10, metavar="N", help="1-10000 (default 10)"
    )
    parser.add_argument(
        "--window",
        dest="window_s",
        type=argtypes.seconds,
        default=0.0,
        metavar="S",
        help="batching window (default 0)",
    )
    parser.add_argument(
        "--rows", type=argtypes.rows, default=5, metavar="N", help="masked rows to show (default 5)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the handler's JSON log lines")


def run(args: Any) -> int:
    from ..demo import DemoOptions, run_demo
    from ..runner import check_batching

    check_batching(args.batch_size, args.window_s)
    # The parser holds the defaults; DemoOptions takes every option by its own name.
    opts = DemoOptions(
        **{f.name: getattr(args, f.name) for f in fields(DemoOptions) if hasattr(args, f.name)}
    )
    terminate_like_ctrl_c()
    result = run_demo(opts, sys.stdout, sys.stderr)
    return EXIT_OK if result.balanced and not result.send_failures else EXIT_FAILED
