"""Errors of the command line itself (usage and environment), on top of ``login_etl.errors``."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A problem the user can fix (bad arguments, a missing file); printed as one line."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
