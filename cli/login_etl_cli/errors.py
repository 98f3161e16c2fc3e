"""Errors of the command line itself (usage and environment), on top of ``login_etl.errors``."""

from __future__ import annotations

import json

__all__ = ["CliError", "json_string", "printable"]


class CliError(Exception):
    """A problem the user can fix (bad arguments, a missing file); printed as one line."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def printable(text: str) -> str:
    """``text`` as is when every character is printable, else as a JSON string with the others
    escaped: user input echoed in a message can then never break the line or drive the terminal."""
    return text if text.isprintable() else json_string(text)


def json_string(text: str) -> str:
    """``text`` as a JSON string on one line, every non-printable character escaped (JSON itself
    leaves DEL, C1 controls, U+2028 and format characters raw); ``json.loads`` gives ``text`` back."""
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in json.dumps(text, ensure_ascii=False))


def _escape(ch: str) -> str:
    """One character as JSON's ``\\uXXXX`` (a surrogate pair above U+FFFF)."""
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
