"""What each file in events/ yields, run alone on an empty database: the one table that the
in-process tests (tests/integration/test_events_dir.py) and the SAM CLI tier (tests/sam) both pin."""

from __future__ import annotations

from pathlib import Path

EVENTS = Path(__file__).resolve().parents[2] / "events"

# file stem -> (rows inserted, {reject reason: count}) when run alone on an empty database.
EXPECTED: dict[str, tuple[int, dict[str, int]]] = {
    "valid_batch": (10, {}),
    "mixed_batch": (
        4,
        {"missing_field": 1, "not_json": 1, "not_object": 1, "bad_ip": 1, "bad_app_version": 1},
    ),
    "sns_envelope": (3, {"bad_envelope": 1}),
    "eventbridge_envelope": (3, {"bad_envelope": 1}),
    "fifo_batch": (6, {}),
}


def event_files() -> list[Path]:
    """Every sample event; env*.json are `--env-vars` files, not events."""
    return sorted(p for p in EVENTS.glob("*.json") if not p.name.startswith("env"))
