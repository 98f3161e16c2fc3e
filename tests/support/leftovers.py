"""Nothing the test suite starts may outlive it: find what did, by an environment marker.

Every process the suite starts (an embedded PostgreSQL's postmaster and its backends, a
dedicated cluster, a drainer, a ``login-etl`` subprocess, moto in its own process) inherits the
suite's environment, including a marker set when the session starts. A postmaster daemonises, so
it is no longer the suite's child; the marker still names it. At the end of the session any
process that carries the marker is a leftover: it is reported, stopped (it is the suite's own,
found by id), and the session fails.

Linux only (``/proc``); elsewhere the check finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Final

__all__ = ["MARKER", "carrying", "mark_session", "stop", "survivors_after"]

MARKER: Final = "LOGIN_ETL_TEST_SESSION"


def mark_session() -> str:
    """A fresh marker for this session (a nested session, e.g. ``make`` inside a test, gets its own)."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    os.environ[MARKER] = token
    return token


def carrying(name: str, value: str) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every live process (but this one) whose environment has
    ``name=value``. Zombies have no environment left and are not counted."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append((int(entry.name), cmdline.strip()))
    return found


def survivors_after(token: str, grace_s: float = 10.0, *, name: str = MARKER) -> list[tuple[int, str]]:
    """The session's processes still alive after ``grace_s`` (shutdowns finish asynchronously)."""
    deadline = time.monotonic() + grace_s
    while (left := carrying(name, token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def stop(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL what is still there: these are the suite's own, found by id."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(1.0)
