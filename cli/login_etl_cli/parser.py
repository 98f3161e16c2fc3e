"""The argument parser of every command: argparse, minus its habit of quoting the command line.

argparse's own errors quote argv: ``unrecognized arguments: --database-url postgresql://u:pw@...``,
``invalid choice: 'k1:<key>'``, ``ambiguous option: --re=<value>``. A connection string or a key
pasted onto the command line by mistake would then land on stderr, in a terminal's scrollback or
a CI log. Option values are already checked without echo (``argtypes``); this closes the errors
argparse raises itself. An unknown option is still named (up to its ``=``); a value never is.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, Final, NoReturn

__all__ = ["QuietParser"]

#: A long option's name as typed (the text before any ``=value``), when it looks like one of ours.
_LONG_NAME: Final = re.compile(r"--[a-z][a-z0-9-]{0,40}")
#: A short option: only its letter is shown (``-pSECRET`` is a value joined to ``-p``).
_SHORT_NAME: Final = re.compile(r"-[A-Za-z]")
_INVALID_CHOICE: Final = re.compile(r"invalid choice: .*? \(choose from ", re.DOTALL)
_AMBIGUOUS: Final = re.compile(r"ambiguous option: (?P<typed>.*) could match (?P<matches>[^\n]*)$", re.DOTALL)


def _shown(arg: str) -> str:
    """What an unrecognized argument may show of itself: an option's name, never a value."""
    name, has_value, _ = arg.partition("=")
    if _LONG_NAME.fullmatch(name):
        return f"{name}=..." if has_value else name
    if _SHORT_NAME.match(arg):
        return arg[:2] if len(arg) == 2 else f"{arg[:2]}..."
    return "..."


class QuietParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors name what was wrong without quoting the argument's text.

    Subparsers are built from the parent's class, so every command gets it.
    """

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        parsed: argparse.Namespace
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            names = " ".join(dict.fromkeys(_shown(arg) for arg in extras))
            self.error(f"unrecognized arguments: {names} (values are not shown)")
        return parsed

    def error(self, message: str) -> NoReturn:
        message = _INVALID_CHOICE.sub("invalid choice (choose from ", message)
        ambiguous = _AMBIGUOUS.fullmatch(message)
        if ambiguous is not None:
            typed = _shown(ambiguous["typed"].partition("=")[0])
            message = f"ambiguous option: {typed} could match {ambiguous['matches']}"
        super().error(message)
