"""Valid login bodies for tests that count rows: ``login_body(i, net)`` is user ``u{i}`` from
``{net}.{i}``, so each test's ips are its own (the PII guard then knows what must never leak)."""

from __future__ import annotations

import json

__all__ = ["login_body"]


def login_body(i: int, net: str) -> str:
    return json.dumps(
        {
            "user_id": f"u{i}",
            "app_version": "1.0",
            "device_type": "ios",
            "ip": f"{net}.{i}",
            "device_id": f"d-{i}",
        }
    )
