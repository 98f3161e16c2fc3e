"""One module per ``login-etl`` command: each holds its options, help, examples, validation and run,
and exposes ``register(subparsers)``. The order here is the order of ``login-etl --help``."""

from __future__ import annotations

from types import ModuleType

from . import demo, drain, migrate, rejects, reveal, send, sqs_local, status

__all__ = ["COMMANDS"]

COMMANDS: tuple[ModuleType, ...] = (demo, drain, send, reveal, migrate, rejects, status, sqs_local)
