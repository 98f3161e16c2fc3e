"""What every command module shares: its subparser's shape, the exit codes, and SIGTERM handling."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

from .. import argtypes

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "add_command",
    "synth_options",
    "terminate_like_ctrl_c",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2
EXIT_INTERRUPTED: Final = 130


def add_command(
    subs: Any, name: str, help_text: str, description: str, epilog: str, *, func: Callable[[Any], int]
) -> argparse.ArgumentParser:
    """One subcommand whose help keeps its line breaks (the examples are laid out by hand)."""
    parser: argparse.ArgumentParser = subs.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser


def synth_options(parser: argparse.ArgumentParser, *, invalid: float, duplicate: float) -> None:
    """The synthetic-data knobs ``demo`` and ``send`` share (only their defaults differ)."""
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


def terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, a CI timeout, systemd) unwinds like Ctrl-C, so everything a command
    started (the embedded PostgreSQL above all, which outlives its parent) is stopped."""

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one unwinding is enough
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
