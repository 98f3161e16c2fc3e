"""Progress on stderr for long runs; silent for short ones, so small runs stay clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``update(done)`` as work advances; nothing is shown before ``delay_s`` has passed.

    On a terminal one line is redrawn in place; otherwise a plain line is written every
    ``log_interval_s`` so CI logs stay readable.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        delay_s: float = 1.0,
        log_interval_s: float = 5.0,
        redraw: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        #: ``redraw=False`` keeps plain lines on a terminal too, where other lines interleave.
        self.tty = redraw and self.stream.isatty()
        self._delay = delay_s
        self._interval = 0.2 if self.tty else log_interval_s
        self._started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, detail: str = "") -> None:
        """``detail`` (counts, never values) follows the count and rate."""
        now = time.monotonic()
        elapsed = now - self._started
        if elapsed < self._delay or now - self._last < self._interval:
            return
        self._last = now
        rate = done / elapsed if elapsed > 0 else 0.0
        of = f"/{self.total:,}" if self.total is not None else ""
        text = f"{self.label}: {done:,}{of} ({rate:,.0f}/s){', ' if detail else ''}{detail}"
        if self.tty:
            self.stream.write(f"\r\x1b[K{text}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        """End the redrawn line, if one was drawn."""
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self._shown = False
