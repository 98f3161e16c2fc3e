"""Regression guard for the bulk write: database round trips per batch do not grow with its size.

Timings are too noisy on shared machines to assert, but round trips are exact: the happy path is a
fixed handful of statements (BEGIN, COPY, move, COMMIT) whether the batch holds 10 records or
5,000, and a redelivered batch (every record already stored) costs the same. ``PgStore`` counts
every statement it sends in ``round_trips``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Invoke
from login_etl import handler

pytestmark = pytest.mark.timeout(120)


def _bodies(n: int) -> list[str]:
    """Exercise-shaped bodies with unique values (uuid-derived), so nothing dedupes by accident."""
    out = []
    for _ in range(n):
        u = uuid.uuid4()
        b = u.bytes
        out.append(
            json.dumps(
                {
                    "user_id": str(u),
                    "app_version": f"{b[0] % 6}.{b[1] % 10}.{b[2] % 10}",
                    "device_type": "android" if b[3] % 2 else "ios",
                    "ip": f"{b[4] % 254 + 1}.{b[5]}.{b[6]}.{b[7] % 254 + 1}",
                    "locale": None if b[8] % 3 == 0 else "RU",
                    "device_id": f"{u.hex[:3]}-{u.hex[3:5]}-{u.hex[5:9]}",
                }
            )
        )
    return out


def _round_trips(invoke: Invoke, event: dict[str, Any]) -> tuple[int, Any]:
    store = handler.get_runtime().store
    before = store.round_trips
    response = invoke(event)
    return store.round_trips - before, response


@pytest.fixture
def warm(invoke_handler: Invoke, sqs_event: Callable[..., dict[str, Any]]) -> Invoke:
    """The handler after one batch: connected and migrated, as in a warm Lambda container."""
    invoke_handler(sqs_event(_bodies(2)))
    return invoke_handler


def test_a_batch_costs_the_same_round_trips_whatever_its_size(
    warm: Invoke, sqs_event: Callable[..., dict[str, Any]], lambda_env: Any
) -> None:
    counts = {}
    for n in (10, 1000, 5000):
        trips, response = _round_trips(warm, sqs_event(_bodies(n)))
        assert response == {"batchItemFailures": []}
        counts[n] = trips
    assert counts[10] == counts[1000] == counts[5000], counts
    assert lambda_env.count("user_logins") == 2 + 10 + 1000 + 5000


def test_a_redelivered_batch_costs_the_same_round_trips_as_a_fresh_one(
    warm: Invoke, sqs_event: Callable[..., dict[str, Any]], lambda_env: Any
) -> None:
    event = sqs_event(_bodies(5000))
    fresh, _ = _round_trips(warm, event)
    again, response = _round_trips(warm, event)
    assert response == {"batchItemFailures": []}
    assert again <= fresh  # a redelivered batch skips the COPY
    assert lambda_env.count("user_logins") == 2 + 5000


def test_rejects_cost_one_more_round_trip_however_many_there_are(
    warm: Invoke, sqs_event: Callable[..., dict[str, Any]], lambda_env: Any
) -> None:
    clean, _ = _round_trips(warm, sqs_event(_bodies(100)))
    few, _ = _round_trips(warm, sqs_event([*_bodies(99), "not json"]))
    many, _ = _round_trips(warm, sqs_event([*_bodies(50), *["not json"] * 50]))
    assert few == many == clean + 1
    assert lambda_env.count("user_logins_rejected") == 51
