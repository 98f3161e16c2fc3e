"""``Runtime.on_outcome``: an observer sees each batch's outcome, the same one the handler
answered with and published, for every batch after it subscribed; the handler's answer is
unchanged by it. The benchmark relies on it instead of patching the handler's private names."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conftest import Invoke, exercise_bodies
from login_etl import handler
from login_etl.batch import BatchOutcome
from support.pg import TestDB


def test_an_observer_sees_every_batch_outcome_as_the_handler_answered_it(
    invoke_handler: Invoke, sqs_event: Callable[..., dict[str, Any]], lambda_env: TestDB
) -> None:
    invoke_handler(sqs_event(exercise_bodies()[:1]))  # builds the runtime
    seen: list[BatchOutcome] = []
    handler.get_runtime().on_outcome.append(seen.append)
    bodies = [*exercise_bodies()[1:4], "not json", json.dumps({"user_id": "u"})]

    first = invoke_handler(sqs_event(bodies))
    again = invoke_handler(sqs_event(bodies[:2]))

    assert [(o.received, o.inserted, o.rejected, o.failed) for o in seen] == [(5, 3, 2, 0), (2, 2, 0, 0)]
    assert seen[0].rejected_by_reason == {"not_json": 1, "missing_field": 1}
    assert [seen[0].response, seen[1].response] == [first, again] == [{"batchItemFailures": []}] * 2
    assert lambda_env.count("user_logins") == 1 + 3 + 2
