"""The raw event never reaches the log, even when POWERTOOLS_LOGGER_LOG_EVENT asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
from login_etl import handler
from login_etl_cli.context import LocalContext
try:
    handler.lambda_handler({"Records": [{"body": "MARKER-10.9.8.7"}]}, LocalContext())
except Exception as exc:
    print("raised", type(exc).__name__)
"""


def test_log_event_is_pinned_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_", "DB_", "DATABASE_"))}
    env |= {
        "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(REPO / "function"), str(REPO / "cli")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    out = result.stdout + result.stderr
    assert "raised ConfigError" in out  # the handler ran (and stopped at the missing configuration)
    assert '"message":"configuration error"' in out  # its log lines do reach the output
    assert "MARKER-10.9.8.7" not in out
