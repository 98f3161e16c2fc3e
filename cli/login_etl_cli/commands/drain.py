"""``login-etl drain``: its options, help, examples and run; its batching rules are
``runner.check_batching``, shared with the demo and the library call."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .. import argtypes
from ._common import EXIT_FAILED, EXIT_OK, add_command

if TYPE_CHECKING:
    from ..runner import DrainStats

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "drain",
        "drain a queue through the handler, like Lambda's SQS event source mapping",
        "Long-poll the queue (up to 10 messages a receive) until the batch size or the batching\n"
        "window is reached, build the exact Lambda SQS event, call the handler, and delete only the\n"
        "records it did not report failed. Failures are left to their visibility timeout, so the\n"
        "queue's redrive policy moves them to its DLQ. A handler that raises fails the whole batch.\n"
        "SIGINT/SIGTERM stop it within seconds: the batch in hand is finished, nothing uncommitted\n"
        "is deleted. Exit status 1 if any record failed during the run. The handler's JSON log\n"
        "lines go to stdout; the run summary to stderr. Needs DATABASE_URL and PII_KEYS (or their\n"
        "Secrets Manager forms) and AWS credentials (any, for LocalStack or moto). One process\n"
        "holds one database connection, like one Lambda container: for concurrency, run several\n"
        "processes.",
        "examples:\n"
        "  login-etl drain --queue-url http://localhost:4566/000000000000/logins \\\n"
        "      --endpoint-url http://localhost:4566                  # LocalStack (Docker)\n"
        "  login-etl drain --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/logins \\\n"
        "      --batch-size 100 --window 2 --forever                 # AWS\n",
        func=run,
    )
    argtypes.add_queue_options(parser, required=True, queue_help="the SQS queue URL")
    parser.add_argument(
        "--batch-size", type=argtypes.batch_size, default=10, metavar="N", help="1-10000 (default 10)"
    )
    parser.add_argument(
        "--window",
        type=argtypes.seconds,
        default=0.0,
        metavar="S",
        help="batching window: the longest wait to fill a batch (default 0; >= 1 when batch size > 10)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--until-empty",
        dest="forever",
        action="store_false",
        default=False,
        help="stop after a receive that returns no message (the default)",
    )
    mode.add_argument("--forever", action="store_true", help="keep polling until SIGINT/SIGTERM")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only warnings and errors from the handler, and a progress line on stderr every 5 s",
    )
    noise.add_argument("--verbose", action="store_true", help="debug logs and EMF metrics from the handler")


def _install_stop(stop: threading.Event) -> None:
    """The first SIGINT/SIGTERM asks for a clean stop; a second SIGINT interrupts at once."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        sys.stderr.write(f"login-etl: {signal.Signals(signum).name}: stopping after the batch in hand\n")
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _progress_lines() -> Callable[[DrainStats], None]:
    """With ``-q`` the per-batch summaries are gone, so a long drain would say nothing until it
    ends: one plain stderr line at most every 5 s (counts only), first after 5 s, so short runs
    stay silent. Plain lines, not a redrawn one: the handler's warnings interleave on a terminal.
    """
    from ..progress import Progress

    progress = Progress("drain: received", delay_s=5.0, log_interval_s=5.0, redraw=False)

    def on_batch(stats: DrainStats) -> None:
        progress.update(stats.received, f"{stats.failed:,} failed, {stats.deleted:,} deleted")

    return on_batch


def run(args: argparse.Namespace) -> int:
    from login_etl.config import Settings
    from login_etl.sources import KeySource

    from ..aws import sqs_client
    from ..environment import drop_stray_emf, logging_defaults
    from ..runner import check_batching, drain

    check_batching(args.batch_size, args.window)
    # Fail fast and clearly on bad configuration, the key ring included, before touching the queue
    # (otherwise every batch fails and the messages walk towards the DLQ) or the environment.
    settings = Settings.from_env()
    KeySource(settings.pii, secrets_max_age_s=settings.secrets_max_age_s).keyring()
    level = "WARNING" if args.quiet else "DEBUG" if args.verbose else None
    logging_defaults(level=level, default_level="INFO", metrics=args.verbose)
    sqs = sqs_client(endpoint_url=args.endpoint_url, region=args.region, queue_url=args.queue_url)
    stop = threading.Event()
    _install_stop(stop)
    from login_etl import handler  # Powertools binds its log stream to stdout at import

    with contextlib.nullcontext() if args.verbose else drop_stray_emf():
        stats = drain(
            sqs,
            args.queue_url,
            batch_size=args.batch_size,
            window_s=args.window,
            until_empty=not args.forever,
            stop=stop,
            handler=handler.lambda_handler,
            on_batch=_progress_lines() if args.quiet else None,
        )
    rate = stats.received / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    sys.stderr.write(
        f"drained: batches={stats.batches} received={stats.received} succeeded={stats.succeeded} "
        f"failed={stats.failed} deleted={stats.deleted} elapsed_s={stats.elapsed_s:.3f} "
        f"records_per_s={rate:.0f}\n"
    )
    return EXIT_FAILED if stats.failed else EXIT_OK
