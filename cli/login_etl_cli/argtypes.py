"""Types for ``login-etl``'s option values: each refuses a bad value in its own words.

argparse prints the message as ``login-etl CMD: error: argument --opt: <message>`` with exit 2.
None of them echoes the value (a URL can carry credentials, and any value can carry terminal
escapes), and each bound keeps a typo from asking for the impossible (memory, SQL integer
ranges). ``tests/unit/test_cli_inputs.py`` checks every option of every command against them.
"""

from __future__ import annotations

import argparse
import re
from typing import Final
from urllib.parse import urlsplit

from login_etl.constants import Reason

from .roles import check_role_name

REASON_CODES: Final = tuple(reason.value for reason in Reason)

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_DAYS",
    "MAX_LIMIT",
    "MAX_ROWS",
    "MAX_SYNTHETIC",
    "MAX_WINDOW_S",
    "REASON_CODES",
    "REGION_NAME",
    "add_queue_options",
    "batch_size",
    "days",
    "endpoint_url",
    "limit",
    "port",
    "queue_url",
    "ratio",
    "reason",
    "region",
    "role_name",
    "rows",
    "seconds",
    "seed",
    "synthetic",
]

#: Upper bounds that keep a typo from asking for the impossible (memory, SQL integer ranges).
MAX_BATCH_SIZE: Final = 10_000  # the event source mapping's limit
MAX_SYNTHETIC: Final = 1_000_000
MAX_LIMIT: Final = 10_000_000
MAX_ROWS: Final = 1_000
MAX_DAYS: Final = 366
MAX_WINDOW_S: Final = 300  # the event source mapping's longest batching window
# What botocore accepts as a region name (a DNS label), so a bad one is caught before any call.
REGION_NAME: Final = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def _whole(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise argparse.ArgumentTypeError(f"must be {bound}")
    return value


def _decimal(text: str, low: float, high: float, unit: str = "") -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number") from None
    if not low <= value <= high:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}{unit}")
    return value


def batch_size(text: str) -> int:
    return _whole(text, 1, MAX_BATCH_SIZE)


def days(text: str) -> int:
    return _whole(text, 1, MAX_DAYS)


def synthetic(text: str) -> int:
    return _whole(text, 0, MAX_SYNTHETIC)


def limit(text: str) -> int:
    return _whole(text, 1, MAX_LIMIT)


def rows(text: str) -> int:
    return _whole(text, 0, MAX_ROWS)


def seed(text: str) -> int:
    return _whole(text, -(2**63), 2**63 - 1)


def port(text: str) -> int:
    return _whole(text, 0, 65535)


def ratio(text: str) -> float:
    return _decimal(text, 0, 1)


def role_name(text: str) -> str:
    try:
        return check_role_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seconds(text: str) -> float:
    return _decimal(text, 0, MAX_WINDOW_S, " seconds")


def _http_url(text: str, *, path: bool) -> str:
    """An http(s) URL with a host (and a path, for a queue URL), as boto3 needs it."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise argparse.ArgumentTypeError("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError("must be an http:// or https:// URL with a host")
    if not text.isprintable() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError("must not contain spaces or control characters")
    if path and parts.path.strip("/") == "":
        raise argparse.ArgumentTypeError("must name a queue: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME")
    return text


def endpoint_url(text: str) -> str:
    return _http_url(text, path=False)


def queue_url(text: str) -> str:
    return _http_url(text, path=True)


def region(text: str) -> str:
    if not REGION_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError("must be an AWS region name such as us-east-1")
    return text


def reason(text: str) -> str:
    if text not in REASON_CODES:
        raise argparse.ArgumentTypeError(f"must be one of: {', '.join(REASON_CODES)}")
    return text


def add_queue_options(parser: argparse.ArgumentParser, *, required: bool, queue_help: str) -> None:
    """``--queue-url``, ``--endpoint-url`` and ``--region``, checked, as every SQS command has them."""
    parser.add_argument("--queue-url", required=required, type=queue_url, metavar="URL", help=queue_help)
    parser.add_argument(
        "--endpoint-url",
        type=endpoint_url,
        metavar="URL",
        help="an SQS-compatible endpoint (LocalStack, moto); default: AWS (or AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--region",
        type=region,
        help="AWS region; default: the queue URL's, else AWS_REGION / AWS_DEFAULT_REGION / the profile's",
    )
