"""``login-etl``: parse the arguments, call one function per command, translate errors.

Exit status: 0 success; 1 the work failed (a record failed, a send or a reveal failed, SQS or
the database was unreachable); 2 bad usage or configuration (a one-line ``error:``, never a
traceback, never a secret); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final

from login_etl.errors import ConfigError, StoreError

from . import argtypes
from .errors import CliError
from .roles import DEFAULT_MIGRATION_ROLE, DEFAULT_RUNTIME_ROLE

__all__ = ["build_parser", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2
EXIT_INTERRUPTED: Final = 130

_DESCRIPTION = """\
Run the login-etl Lambda handler locally: a demo with no Docker or AWS, a queue drainer faithful
to Lambda's SQS event source mapping, and operator tools (send, reveal, migrate, rejects, status).

Configuration comes from the environment: DATABASE_URL (or DB_SECRET_ARN), PII_KEYS (or
PII_KEYS_SECRET_ARN), and the standard AWS variables. See docs/cli.md."""

_EPILOG = """\
examples:
  login-etl demo                                   # no Docker, network or AWS account
  login-etl send --queue-url $Q --endpoint-url http://localhost:4566 --synthetic 1000
  login-etl drain --queue-url $Q --endpoint-url http://localhost:4566 --batch-size 100 --window 1
  login-etl reveal k1:AbCd...                      # needs PII_KEYS
  login-etl migrate                                # needs DATABASE_URL
  login-etl rejects --limit 20
  login-etl status --queue-url $Q                  # keeping up, falling behind, or stuck?

exit status: 0 ok, 1 the work failed, 2 bad usage or configuration, 130 interrupted"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("login-etl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _sub(
    subs: Any, name: str, help_text: str, description: str, epilog: str, *, func: Callable[[Any], int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subs.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def _synth_options(parser: argparse.ArgumentParser, *, invalid: float, duplicate: float) -> None:
    parser.add_argument("--seed", type=argtypes.seed, default=0, help="synthetic data seed (default 0)")
    parser.add_argument(
        "--invalid-ratio",
        type=argtypes.ratio,
        default=invalid,
        metavar="R",
        help=f"share of malformed synthetic bodies, every reject reason in turn (default {invalid})",
    )
    parser.add_argument(
        "--duplicate-ratio",
        type=argtypes.ratio,
        default=duplicate,
        metavar="R",
        help=f"share of synthetic bodies re-sent identically: each one a second row (default {duplicate})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="login-etl",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"login-etl {_version()}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = _sub(
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
        func=_cmd_demo,
    )
    source = demo.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, metavar="F.ndjson", help="bodies to send, one per line")
    source.add_argument(
        "--synthetic",
        type=argtypes.synthetic,
        metavar="N",
        help=f"N generated logins (at most {argtypes.MAX_SYNTHETIC:,})",
    )
    _synth_options(demo, invalid=0.01, duplicate=0.05)
    demo.add_argument(
        "--batch-size", type=argtypes.batch_size, default=10, metavar="N", help="1-10000 (default 10)"
    )
    demo.add_argument(
        "--window", type=argtypes.seconds, default=0.0, metavar="S", help="batching window (default 0)"
    )
    demo.add_argument(
        "--rows", type=argtypes.rows, default=5, metavar="N", help="masked rows to show (default 5)"
    )
    demo.add_argument("--verbose", action="store_true", help="show the handler's JSON log lines")

    drain = _sub(
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
        func=_cmd_drain,
    )
    argtypes.add_queue_options(drain, required=True, queue_help="the SQS queue URL")
    drain.add_argument(
        "--batch-size", type=argtypes.batch_size, default=10, metavar="N", help="1-10000 (default 10)"
    )
    drain.add_argument(
        "--window",
        type=argtypes.seconds,
        default=0.0,
        metavar="S",
        help="batching window: the longest wait to fill a batch (default 0; >= 1 when batch size > 10)",
    )
    mode = drain.add_mutually_exclusive_group()
    mode.add_argument(
        "--until-empty",
        dest="forever",
        action="store_false",
        default=False,
        help="stop after a receive that returns no message (the default)",
    )
    mode.add_argument("--forever", action="store_true", help="keep polling until SIGINT/SIGTERM")
    noise = drain.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors from the handler")
    noise.add_argument("--verbose", action="store_true", help="debug logs and EMF metrics from the handler")

    send = _sub(
        subs,
        "send",
        "send bodies from a file, or synthetic logins, to a queue",
        "Send with SendMessageBatch (10 entries and at most 256 KiB per call). Bodies are sent\n"
        "verbatim. For a FIFO queue (.fifo) each message gets MessageGroupId = its user_id and a\n"
        "unique deduplication id, so an identical body sent twice is still two messages. Exit\n"
        "status 1 if any entry was refused (each is reported on stderr).",
        "examples:\n"
        "  login-etl send --queue-url $Q --endpoint-url http://localhost:4566 \\\n"
        "      --file data/exercise_logins.ndjson\n"
        "  login-etl send --queue-url $Q --synthetic 10000 \\\n"
        "      --invalid-ratio 0.02 --duplicate-ratio 0.1 --seed 7",
        func=_cmd_send,
    )
    argtypes.add_queue_options(send, required=True, queue_help="the SQS queue URL")
    body_source = send.add_mutually_exclusive_group(required=True)
    body_source.add_argument("--file", type=Path, metavar="F.ndjson", help="bodies to send, one per line")
    body_source.add_argument(
        "--synthetic",
        type=argtypes.synthetic,
        metavar="N",
        help=f"N generated logins (at most {argtypes.MAX_SYNTHETIC:,})",
    )
    _synth_options(send, invalid=0.0, duplicate=0.0)

    reveal = _sub(
        subs,
        "reveal",
        "decrypt masked ip / device_id values (needs the PII key ring)",
        "Print exactly one line per VALUE on stdout, in order: its plaintext. A value that does\n"
        "not decrypt prints an empty line there, and an error naming its position on stderr; the\n"
        "exit status is then 1. A plaintext containing a line break is printed as a JSON string.\n"
        "Before any value is printed, an audit record (who: the STS caller, else the OS user; when;\n"
        "how many and which key ids; never values) goes to the CloudWatch Logs group\n"
        "LOGIN_ETL_AUDIT_LOG_GROUP if set (no record, no reveal), and to stderr. Keys come from\n"
        "PII_KEYS or PII_KEYS_SECRET_ARN (the operator key secret); no database is needed.",
        "examples:\n"
        "  PII_KEYS='k1:...' login-etl reveal k1:3q2-7w... k1:Zm9v...\n"
        "  psql -Atc 'SELECT masked_ip FROM user_logins LIMIT 5' | login-etl reveal -",
        func=_cmd_reveal,
    )
    reveal.add_argument("values", nargs="+", metavar="VALUE", help="masked values; - reads them from stdin")
    reveal.add_argument("--json", action="store_true", help="print every plaintext as a JSON string")

    migrate = _sub(
        subs,
        "migrate",
        "create or upgrade the database schema (idempotent); create or print the database roles",
        "Create the tables, or upgrade an exercise-style user_logins that has no message_id. Safe to\n"
        "run any time, even while functions run: it holds a Postgres advisory lock. Needs\n"
        "DATABASE_URL (or DB_SECRET_ARN); no PII key.\n\n"
        "Roles (docs/deployment.md): --print-roles prints the SQL for a migration role and a\n"
        "least-privilege runtime role; --create-roles runs it as the (admin) DATABASE_URL user and\n"
        "stops. Then run `login-etl migrate --runtime-role NAME` as the migration role: it migrates\n"
        "and grants NAME exactly what the function needs.",
        "examples:\n"
        "  DATABASE_URL=postgresql://me:secret@localhost:5432/logins login-etl migrate\n"
        '  login-etl migrate --print-roles | psql "$ADMIN_URL"\n'
        "  DATABASE_URL=$MIGRATOR_URL login-etl migrate --runtime-role login_etl_runtime",
        func=_cmd_migrate,
    )
    roles = migrate.add_mutually_exclusive_group()
    roles.add_argument("--print-roles", action="store_true", help="print the roles' SQL and exit")
    roles.add_argument("--create-roles", action="store_true", help="create the roles (as an admin) and exit")
    migrate.add_argument(
        "--migration-role",
        type=argtypes.role_name,
        default=DEFAULT_MIGRATION_ROLE,
        metavar="NAME",
        help=f"the role that owns the schema (default {DEFAULT_MIGRATION_ROLE})",
    )
    migrate.add_argument(
        "--runtime-role",
        type=argtypes.role_name,
        default=None,
        metavar="NAME",
        help=f"grant NAME the runtime privileges after migrating (roles default {DEFAULT_RUNTIME_ROLE})",
    )

    rejects = _sub(
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
        func=_cmd_rejects,
    )
    rejects.add_argument("--limit", type=argtypes.limit, metavar="N", help="at most N rows (list default 50)")
    rejects.add_argument(
        "--reason",
        type=argtypes.reason,
        metavar="CODE",
        help=f"only this reason: {', '.join(argtypes.REASON_CODES)}",
    )
    rejects.add_argument("--replay", action="store_true", help="re-send the bodies (needs --queue-url)")
    rejects.add_argument(
        "--show",
        metavar="MESSAGE_ID",
        help="decrypt one rejected body and print it as a JSON string (audited)",
    )
    argtypes.add_queue_options(rejects, required=False, queue_help="where --replay sends")
    from .status import register as register_status

    register_status(subs, _sub)
    sqs_local = _sub(
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
        func=_cmd_sqs_local,
    )
    sqs_local.add_argument(
        "--port",
        type=argtypes.port,
        default=0,
        metavar="N",
        help="port for the SQS API (default: a free one)",
    )
    return parser


# --- commands: each translates arguments into one library call ---------------------------------
def _cmd_demo(args: Any) -> int:
    from .demo import DemoOptions, run_demo

    opts = DemoOptions(
        file=args.file,
        synthetic=args.synthetic,
        seed=args.seed,
        invalid_ratio=args.invalid_ratio,
        duplicate_ratio=args.duplicate_ratio,
        batch_size=args.batch_size,
        window_s=args.window,
        rows=args.rows,
        verbose=args.verbose,
    )
    _terminate_like_ctrl_c()
    result = run_demo(opts, sys.stdout, sys.stderr)
    return EXIT_OK if result.balanced and not result.send_failures else EXIT_FAILED


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, a CI timeout, systemd) unwinds like Ctrl-C, so everything a command
    started (the embedded PostgreSQL above all, which outlives its parent) is stopped."""

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one unwinding is enough
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


def _check_window(args: Any) -> None:
    if args.batch_size > 10 and args.window < 1:
        raise CliError("--batch-size above 10 needs --window of at least 1 second, as on Lambda")


def _install_stop(stop: threading.Event) -> None:
    """The first SIGINT/SIGTERM asks for a clean stop; a second SIGINT interrupts at once."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        sys.stderr.write(f"login-etl: {signal.Signals(signum).name}: stopping after the batch in hand\n")
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _cmd_drain(args: Any) -> int:
    from login_etl.config import Settings
    from login_etl.runtime import Runtime

    from .aws import sqs_client
    from .environment import drop_stray_emf, logging_defaults
    from .runner import drain

    _check_window(args)
    # Fail fast and clearly on bad configuration, the key ring included, before touching the queue
    # (otherwise every batch fails and the messages walk towards the DLQ) or the environment.
    Runtime(Settings.from_env()).keyring()
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
        )
    rate = stats.received / stats.elapsed_s if stats.elapsed_s > 0 else 0.0
    sys.stderr.write(
        f"drained: batches={stats.batches} received={stats.received} succeeded={stats.succeeded} "
        f"failed={stats.failed} deleted={stats.deleted} elapsed_s={stats.elapsed_s:.3f} "
        f"records_per_s={rate:.0f}\n"
    )
    return EXIT_FAILED if stats.failed else EXIT_OK


def _cmd_send(args: Any) -> int:
    from .aws import sqs_client
    from .progress import Progress
    from .sender import read_ndjson, send_bodies
    from .synth import generate

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


def _cmd_reveal(args: Any) -> int:
    from .audit import Auditor
    from .operator import keyring_from_env, reveal_values

    values: list[str] = []
    for value in args.values:
        if value == "-":
            try:  # bytes, decoded here: the locale could otherwise smuggle undecodable bytes in
                text = sys.stdin.buffer.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CliError(
                    f"standard input is not UTF-8 text (first bad byte at offset {exc.start})"
                ) from None
            values.extend(line for line in text.split("\n") if line.strip())
        else:
            values.append(value)
    ring = keyring_from_env()
    # The audit record goes out (and is flushed) before the first plaintext does.
    Auditor(sys.stderr).record("reveal", values)
    failed = reveal_values(values, ring, sys.stdout, sys.stderr, as_json=args.json)
    return EXIT_FAILED if failed else EXIT_OK


def _show_reject(message_id: str) -> int:
    from login_etl.errors import RevealError

    from .audit import Auditor
    from .operator import db_runtime, show_reject

    runtime = db_runtime(with_keys=True)
    try:
        body = show_reject(runtime, message_id, Auditor(sys.stderr))
    except RevealError:
        raise CliError("the stored body does not open under the key ring", exit_code=EXIT_FAILED) from None
    finally:
        runtime.store.close()
    if body is None:
        raise CliError(f"no rejected record has message id {message_id!r}", exit_code=EXIT_FAILED)
    # A JSON string: a body is attacker-controlled, and escaping keeps control characters off the terminal.
    sys.stdout.write(json.dumps(body) + "\n")
    return EXIT_OK


def _cmd_migrate(args: Any) -> int:
    from .operator import create_roles, db_runtime, migrate
    from .roles import create_roles_sql, runtime_grants_sql

    runtime_role = args.runtime_role or DEFAULT_RUNTIME_ROLE
    if args.print_roles:
        sys.stdout.write("-- 1. As an administrator, in the target database:\n")
        sys.stdout.write(create_roles_sql(args.migration_role, runtime_role))
        sys.stdout.write(
            f"-- 2. As {args.migration_role}: `login-etl migrate --runtime-role {runtime_role}`, which\n"
            "--    creates the schema, then runs:\n"
        )
        sys.stdout.write(runtime_grants_sql(runtime_role))
        return EXIT_OK
    if args.create_roles:
        create_roles(db_runtime(with_keys=False), args.migration_role, runtime_role)
        sys.stderr.write(
            f"migrate: roles {args.migration_role} and {runtime_role} exist; set their passwords (or "
            f"GRANT rds_iam), then run `login-etl migrate --runtime-role {runtime_role}` as "
            f"{args.migration_role}\n"
        )
        return EXIT_OK
    report = migrate(db_runtime(with_keys=False), runtime_role=args.runtime_role)
    granted = f"; {args.runtime_role} has the runtime grants" if args.runtime_role else ""
    sys.stderr.write(f"migrate: {report.describe()}{granted}\n")
    return EXIT_OK


def _cmd_sqs_local(args: Any) -> int:
    from .sqs_local import SqsLocalOptions, run_sqs_local

    _terminate_like_ctrl_c()
    try:
        run_sqs_local(SqsLocalOptions(port=args.port), sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        sys.stderr.write("sqs-local: stopped; everything it started is gone\n")
    return EXIT_OK


def _cmd_rejects(args: Any) -> int:
    from .audit import Auditor
    from .operator import db_runtime, list_rejects, replay_rejects

    if args.show is not None:
        if args.replay:
            raise CliError("--show and --replay go separately")
        return _show_reject(args.show)
    if not args.replay:
        if args.queue_url or args.endpoint_url:
            raise CliError("--queue-url and --endpoint-url go with --replay")
        runtime = db_runtime(with_keys=False)
        try:
            rows = list_rejects(runtime, limit=args.limit or 50, reason=args.reason)
        finally:
            runtime.store.close()
        sys.stdout.write("rejected_at\tsent_at\treason\tdetail\tmessage_id\n")
        for r in rows:
            sent = r.sent_at.isoformat() if r.sent_at else "-"
            sys.stdout.write(f"{r.rejected_at.isoformat()}\t{sent}\t{r.reason}\t{r.detail}\t{r.message_id}\n")
        return EXIT_OK
    if not args.queue_url:
        raise CliError("--replay needs --queue-url")
    from .aws import sqs_client

    sqs = sqs_client(endpoint_url=args.endpoint_url, region=args.region, queue_url=args.queue_url)
    result = replay_rejects(
        db_runtime(with_keys=True),
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


# --- error translation -----------------------------------------------------------------------------
def _error(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Expected errors become one ``error:`` line and an exit status."""
    logging.basicConfig(level=logging.WARNING, format="login-etl: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    args = build_parser().parse_args(argv)
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    from .embedded import EmbeddedUnavailableError

    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return _error("interrupted; everything this command started was stopped", EXIT_INTERRUPTED)
    except CliError as exc:
        return _error(str(exc), exc.exit_code)
    except (ConfigError, EmbeddedUnavailableError) as exc:
        return _error(str(exc), EXIT_CONFIG)
    except NoRegionError:
        return _error("no AWS region: pass --region, or set AWS_REGION", EXIT_CONFIG)
    except (NoCredentialsError, PartialCredentialsError):
        return _error(
            "no AWS credentials (boto3's standard chain found none); for LocalStack or moto any "
            "value works, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
            EXIT_CONFIG,
        )
    except ClientError as exc:
        info = exc.response.get("Error", {})
        return _error(f"SQS: {info.get('Code', 'error')}: {info.get('Message', '')}", EXIT_FAILED)
    except BotoCoreError as exc:
        return _error(f"SQS: {exc}", EXIT_FAILED)
    except StoreError as exc:
        return _error(f"database: {exc}", EXIT_FAILED)
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:
        # Never a traceback for the user (it can quote a value): one line naming the kind of
        # failure. LOGIN_ETL_DEBUG=1 shows the traceback for a bug report.
        if os.environ.get("LOGIN_ETL_DEBUG") == "1":
            raise
        return _error(
            f"unexpected {type(exc).__name__}: this is a bug in login-etl; "
            "rerun with LOGIN_ETL_DEBUG=1 for the traceback",
            EXIT_FAILED,
        )


if __name__ == "__main__":
    sys.exit(main())
