"""``login-etl send``: its options, help, examples and run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import argtypes
from ._common import EXIT_FAILED, EXIT_OK, add_command, synth_options

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "send",
        "send bodies from a file, or synthetic logins, to a queue",
        "Send with SendMessageBatch: 10 entries per call, and no more bytes per message and per\n"
        "call than the queue's MaximumMessageSize (1 MiB on queues made since August 2025; 256 KiB\n"
        "when it cannot be read). Bodies are sent verbatim. For a FIFO queue (.fifo) each message\n"
        "gets MessageGroupId = its user_id and a unique deduplication id, so an identical body\n"
        "sent twice is still two messages. Exit status 1 if any entry was refused (each is\n"
        "reported on stderr).",
        "examples:\n"
        "  login-etl send --queue-url $Q --endpoint-url http://localhost:4566 \\\n"
        "      --file data/exercise_logins.ndjson\n"
        "  login-etl send --queue-url $Q --synthetic 10000 \\\n"
        "      --invalid-ratio 0.02 --duplicate-ratio 0.1 --seed 7",
        func=run,
    )
    argtypes.add_queue_options(parser, required=True, queue_help="the SQS queue URL")
    body_source = parser.add_mutually_exclusive_group(required=True)
    body_source.add_argument("--file", type=Path, metavar="F.ndjson", help="bodies to send, one per line")
    body_source.add_argument(
        "--synthetic",
        type=argtypes.synthetic,
        metavar="N",
        help=f"N generated logins (at most {argtypes.MAX_SYNTHETIC:,})",
    )
    synth_options(parser, invalid=0.0, duplicate=0.0)


def run(args: argparse.Namespace) -> int:
    from ..aws import sqs_client
    from ..progress import Progress
    from ..sender import read_ndjson, send_bodies
    from ..synth import generate

    if args.file is not None:
        bodies = list(read_ndjson(args.file))
    else:
        bodies = generate(
            args.synthetic,
            seed=args.seed,
            invalid_ratio=args.invalid_ratio,
            duplicate_ratio=args.duplicate_ratio,
        ).bodies
    sqs = sqs_client(endpoint_url=args.endpoint_url, region=args.region, queue_url=args.queue_url)
    progress = Progress("sending", len(bodies))
    result = send_bodies(sqs, args.queue_url, bodies, on_progress=progress.update)
    progress.finish()
    for failure in result.failures:
        sys.stderr.write(f"error: body {failure.index + 1} was not sent: {failure.code}: {failure.message}\n")
    sys.stderr.write(f"sent={result.sent} failed={len(result.failures)} elapsed_s={result.elapsed_s:.3f}\n")
    return EXIT_FAILED if result.failures else EXIT_OK
