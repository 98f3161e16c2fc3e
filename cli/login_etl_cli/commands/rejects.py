"""``login-etl rejects``: its options, help, examples, the rules between its options, and its three
modes (list, ``--show``, ``--replay``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import argtypes
from ..errors import CliError
from ._common import EXIT_FAILED, EXIT_OK, add_command

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
        subs,
        "rejects",
        "list rejected records, or replay them to a queue after a fix",
        "List the rejected records, newest first: message id, reason, detail and when (never the\n"
        "body). With --replay, decrypt their bodies with the PII key ring and send them to\n"
        "--queue-url, oldest first; each row SQS accepted is deleted from user_logins_rejected in\n"
        "the same transaction, so it is never replayed twice by accident. Rows that do not\n"
        "decrypt or that SQS refuses are kept and reported (exit status 1).",
        "examples:\n"
        "  login-etl rejects --limit 20 --reason bad_app_version\n"
        "  login-etl rejects --replay --reason bad_app_version --queue-url $Q --endpoint-url http://localhost:4566",
        func=run,
    )
    parser.add_argument("--limit", type=argtypes.limit, metavar="N", help="at most N rows (list default 50)")
    parser.add_argument(
        "--reason",
        type=argtypes.reason,
        metavar="CODE",
        help=f"only this reason: {', '.join(argtypes.REASON_CODES)}",
    )
    parser.add_argument("--replay", action="store_true", help="re-send the bodies (needs --queue-url)")
    parser.add_argument(
        "--show",
        metavar="MESSAGE_ID",
        help="decrypt one rejected body and print it as a JSON string (audited)",
    )
    argtypes.add_queue_options(parser, required=False, queue_help="where --replay sends")


def _check(args: argparse.Namespace) -> None:
    """The rules between the options, all here, before anything is opened."""
    if args.show is not None and args.replay:
        raise CliError("--show and --replay go separately")
    if args.show is None and not args.replay and (args.queue_url or args.endpoint_url):
        raise CliError("--queue-url and --endpoint-url go with --replay")
    if args.replay and not args.queue_url:
        raise CliError("--replay needs --queue-url")


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.show is not None:
        return _show(args.show)
    if args.replay:
        return _replay(args)
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    from login_etl.sources import DbSource

    from ..operator import list_rejects

    store = DbSource.from_env().store()
    try:
        rows = list_rejects(store, limit=args.limit or 50, reason=args.reason)
    finally:
        store.close()
    sys.stdout.write("rejected_at\tsent_at\treason\tdetail\tmessage_id\n")
    for r in rows:
        sent = r.sent_at.isoformat() if r.sent_at else "-"
        sys.stdout.write(f"{r.rejected_at.isoformat()}\t{sent}\t{r.reason}\t{r.detail}\t{r.message_id}\n")
    return EXIT_OK


def _show(message_id: str) -> int:
    from login_etl.errors import RevealError
    from login_etl.sources import DbSource, KeySource

    from ..audit import Auditor
    from ..operator import show_reject

    source, keys = DbSource.from_env(), KeySource.from_env()
    store = source.store()
    try:
        body = show_reject(store, keys, message_id, Auditor(sys.stderr))
    except RevealError:
        raise CliError("the stored body does not open under the key ring", exit_code=EXIT_FAILED) from None
    finally:
        store.close()
    if body is None:
        raise CliError(f"no rejected record has message id {message_id!r}", exit_code=EXIT_FAILED)
    # A JSON string: a body is attacker-controlled, and escaping keeps control characters off the terminal.
    sys.stdout.write(json.dumps(body) + "\n")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from login_etl.sources import DbSource, KeySource

    from ..audit import Auditor
    from ..aws import sqs_client
    from ..operator import replay_rejects

    source, keys = DbSource.from_env(), KeySource.from_env()
    sqs = sqs_client(endpoint_url=args.endpoint_url, region=args.region, queue_url=args.queue_url)
    result = replay_rejects(
        source.store(),
        keys,
        sqs,
        args.queue_url,
        limit=args.limit,
        reason=args.reason,
        auditor=Auditor(sys.stderr),
    )
    for line in result.errors:
        sys.stderr.write(f"error: {line}\n")
    sys.stderr.write(f"replayed={result.replayed} failed={result.failed}\n")
    return EXIT_FAILED if result.failed else EXIT_OK
