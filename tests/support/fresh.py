"""A fresh interpreter for what a test process cannot show about itself: what an import loads.

A test process has long imported everything, so ``sys.modules`` there says nothing about a cold
start. The code runs with this Python, in the repository, and prints one JSON line last.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def fresh_json(code: str, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """Run ``code`` with ``args`` in a new interpreter; its last line of output, decoded."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=None if env is None else dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
