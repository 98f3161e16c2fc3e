"""``login-etl reveal``: its options, help, examples, the reading of its values, and its run."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import CliError
from ._common import EXIT_FAILED, EXIT_OK, add_command

__all__ = ["register", "run"]


def register(subs: Any) -> None:
    parser = add_command(
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
        func=run,
    )
    parser.add_argument("values", nargs="+", metavar="VALUE", help="masked values; - reads them from stdin")
    parser.add_argument("--json", action="store_true", help="print every plaintext as a JSON string")


def _values(args: list[str]) -> list[str]:
    """The values in order; ``-`` stands for standard input's non-blank lines."""
    values: list[str] = []
    for value in args:
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
    return values


def run(args: argparse.Namespace) -> int:
    from login_etl.sources import KeySource

    from ..audit import Auditor
    from ..operator import reveal_values

    values = _values(args.values)
    ring = KeySource.from_env().keyring()
    # The audit record goes out (and is flushed) before the first plaintext does.
    Auditor(sys.stderr).record("reveal", values)
    failed = reveal_values(values, ring, sys.stdout, sys.stderr, as_json=args.json)
    return EXIT_FAILED if failed else EXIT_OK
