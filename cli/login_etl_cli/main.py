"""``login-etl``: assemble the parser from one module per command, run one, translate errors.

Exit status: 0 success; 1 the work failed (a record failed, a send or a reveal failed, SQS or
the database was unreachable); 2 bad usage or configuration (a one-line ``error:``, never a
traceback, never a secret); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from login_etl.errors import ConfigError, SecretsUnavailableError, StoreError

from .commands import COMMANDS
from .commands._common import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED
from .errors import CliError
from .parser import QuietParser

__all__ = ["build_parser", "main"]

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


def build_parser() -> argparse.ArgumentParser:
    parser = QuietParser(
        prog="login-etl",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"login-etl {_version()}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subs)
    return parser


#: ``scheme://user:password@`` (or ``user@``) in a URL a library quotes: botocore names the
#: endpoint it could not reach, and an endpoint may carry credentials.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s\"']*@")


def _error(message: str, code: int) -> int:
    """One ``error:`` line; any URL in it loses its credentials, whoever wrote the message."""
    shown = _URL_CREDENTIALS.sub(r"\g<scheme>***@", message)
    sys.stderr.write(f"error: {shown}\n")
    return code


def _about_the_database(message: str) -> str:
    """``message`` said to be the database's: prefixed ``database:`` unless it already names it
    ("database connection failed", "the database does not exist"), so it never reads twice."""
    return message if re.search(r"\bdatabase\b", message) else f"database: {message}"


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
    except SecretsUnavailableError as exc:  # transient: worth a retry, unlike a bad setting
        return _error(str(exc), EXIT_FAILED)
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
        return _error(_about_the_database(str(exc)), EXIT_FAILED)
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
