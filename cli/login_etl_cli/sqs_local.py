"""``login-etl sqs-local``: local services to try ``send``, ``drain`` and ``rejects --replay`` by hand.

The demo runs everything in one go; this keeps the same parts running (moto's SQS API with a
queue and its DLQ, an embedded PostgreSQL unless ``DATABASE_URL`` is set, a PII key unless
``PII_KEYS`` is set) and prints the ``export`` lines that point the other commands at them, so a
newcomer without Docker can drive each step from a second shell. It stops, and deletes what it
created, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from dataclasses import dataclass
from typing import Final, TextIO

from login_etl import constants as c

from .aws import create_queue_with_dlq
from .demo import exercise_data_path, self_command
from .embedded import embedded_postgres, moto_sqs, use_fake_aws_credentials
from .environment import ephemeral_key_spec, user_database_url
from .errors import CliError
from .operator import migrate

__all__ = ["SqsLocalOptions", "run_sqs_local"]

_REGION: Final = "us-east-1"


@dataclass(frozen=True)
class SqsLocalOptions:
    port: int  # the parser's default (0: a free port) is the only one
    queue_name: str = "login-etl"
    visibility_timeout_s: int = 30
    max_receive_count: int = 5


def _data_file() -> str:
    try:
        return shlex.quote(str(exercise_data_path()))
    except CliError:
        return "F.ndjson"


def run_sqs_local(opts: SqsLocalOptions, out: TextIO, err: TextIO) -> None:
    """Start the services, print how to use them, and wait; KeyboardInterrupt stops them all."""
    exports: list[tuple[str, str]] = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", _REGION),
        ("AWS_DEFAULT_REGION", _REGION),
    ]
    with contextlib.ExitStack() as stack:
        db_url = user_database_url()
        if db_url is None:
            err.write("starting an embedded PostgreSQL (pgserver)...\n")
            db_url = stack.enter_context(embedded_postgres())
            exports.append((c.ENV_DATABASE_URL, db_url))  # a unix socket, no password
        else:
            err.write("using your DATABASE_URL (left as it is)\n")
        _migrate(db_url)
        if os.environ.get(c.ENV_PII_KEYS, "").strip() or os.environ.get(c.ENV_PII_KEYS_SECRET_ARN):
            err.write("using your PII key ring (left as it is)\n")
        else:
            exports.append((c.ENV_PII_KEYS, ephemeral_key_spec()))
            err.write("generated an ephemeral PII key for this session only (PII_KEYS in the export lines)\n")
        use_fake_aws_credentials()
        endpoint = stack.enter_context(moto_sqs(opts.port))
        import boto3

        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=_REGION)
        url, dlq_url = create_queue_with_dlq(
            sqs,
            opts.queue_name,
            visibility_timeout_s=opts.visibility_timeout_s,
            max_receive_count=opts.max_receive_count,
        )
        exports += [("AWS_ENDPOINT_URL", endpoint), ("Q", url), ("DLQ", dlq_url)]
        me = self_command()
        out.write("# paste into another shell:\n")
        out.write("".join(f"export {name}={shlex.quote(value)}\n" for name, value in exports))
        out.write(
            "# then, for example:\n"
            f'{me} send --queue-url "$Q" --file {_data_file()}\n'
            f'{me} drain --queue-url "$Q"\n'
            f"{me} rejects\n"
            f'{me} rejects --replay --queue-url "$Q"\n'
        )
        out.flush()
        err.write(
            f"SQS API on {endpoint}: queue {url} (redrive to {dlq_url} after "
            f"{opts.max_receive_count} receives). Ctrl-C or SIGTERM stops everything.\n"
        )
        err.flush()
        while True:
            time.sleep(3600)


def _migrate(db_url: str) -> None:
    """Create the schema in ``db_url`` with the function's own migration (the rest of the user's
    database settings, TLS and timeouts, still apply)."""
    from login_etl.config import DbSettings
    from login_etl.sources import DbSource

    env = {name: value for name, value in os.environ.items() if name != c.ENV_DB_SECRET_ARN}
    env[c.ENV_DATABASE_URL] = db_url
    migrate(DbSource(DbSettings.from_env(env)))
