"""The joined parse (``parse_logins``) gives every body exactly what ``parse_login`` gives it alone,
whatever its neighbours are: the hostile corpus, generated bodies, and fragments built to make
a naive join of the bodies into one JSON array split them in the wrong places."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl.errors import RecordRejectedError
from login_etl.records import Login, _parse_joined, parse_login, parse_logins
from reliability.test_hostile_input import CORPUS, bodies

VALID = json.dumps(
    {
        "user_id": "u-1",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": "192.0.2.1",
        "locale": None,
        "device_id": "771-22-9090",
    }
)

# Each group is a batch whose bodies are mostly not JSON values alone, but whose naive join
# ("[" + ",".join(batch) + "]") is a valid array with one element per body.
NAIVE_JOIN_TRAPS: list[list[str]] = [
    ["[1", "2]", "3,4"],
    ['{"a":[{}', "{}]}", "{},{}"],
    ['{"a":1},{"b":2}', '{"c":"}', '{"}'],
    [VALID + "," + VALID, '{"x":"', '"}'],
    [VALID, '{"ip": "1.2.3.4"', '"user_id": "x"}', "{},{}"],
]

# Bodies that fail only in the joined array (one level deeper), or make the whole join fail.
_LIMIT = sys.getrecursionlimit()
DEPTH_EDGE = ['{"a":' * d + "1" + "}" * d for d in (_LIMIT - 2, _LIMIT - 1, _LIMIT, _LIMIT + 1)]
HUGE_INT = VALID.replace('"2.3.0"', "1" * 5000)

fragments = st.sampled_from([
    "", " ", "\n", "{", "}", "[", "]", ",", "{}", "{} ", " {}", "{}\n,\n{}", "{},{}", "[{}]",
    '{"a":"', '"}', '{"a":"\n"}', "null", "1e400", "NaN", '{"a":NaN}', "\ufeff{}",
    VALID, VALID + " ", VALID[:-1], VALID + "}", HUGE_INT, *DEPTH_EDGE,
    *(body for trap in NAIVE_JOIN_TRAPS for body in trap),
])  # fmt: skip
non_strings = st.sampled_from([None, 5, {"user_id": "x"}, ["a"], b"{}"])
items = st.one_of(bodies, fragments, st.sampled_from([b for _, b, _ in CORPUS]), non_strings)


def outcome(result: Login | Exception) -> tuple[Any, ...]:
    if isinstance(result, Login):
        return ("ok", result)
    if isinstance(result, RecordRejectedError):
        return ("rejected", result.reason, result.detail)
    return ("raised", type(result).__name__)


def alone(body: object) -> tuple[Any, ...]:
    try:
        return outcome(parse_login(body))
    except Exception as err:  # noqa: BLE001 - compared with what parse_logins returns for it
        return outcome(err)


def joined(batch: list[Any]) -> list[tuple[Any, ...]]:
    return [outcome(result) for result in parse_logins(batch)]


@settings(max_examples=500, deadline=None)
@given(st.lists(items, max_size=12))
def test_every_body_gets_what_it_gets_alone(batch: list[Any]) -> None:
    assert joined(batch) == [alone(body) for body in batch]


@pytest.mark.parametrize("trap", NAIVE_JOIN_TRAPS)
def test_fragments_that_fool_a_naive_join_are_parsed_alone(trap: list[str]) -> None:
    naive = json.loads("[" + ",".join(trap) + "]")
    assert len(naive) == len(trap)  # the trap works on a naive join...
    for batch in (trap, [VALID, *trap, VALID], trap[::-1]):
        assert joined(batch) == [alone(body) for body in batch]  # ...and not on ours


def test_the_hostile_corpus_in_one_batch_gives_the_same_reasons() -> None:
    batch = [b for _, b, _ in CORPUS]
    assert joined(batch) == [alone(body) for body in batch]
    assert joined([VALID, *batch, VALID]) == [alone(body) for body in [VALID, *batch, VALID]]


@pytest.mark.parametrize("neighbour", [HUGE_INT, *DEPTH_EDGE, "not json", '{"a":"'])
def test_a_bad_neighbour_does_not_change_a_valid_body(neighbour: str) -> None:
    batch = [VALID, neighbour, VALID]
    result = joined(batch)
    assert result[0] == result[2] == alone(VALID)
    assert result[0][0] == "ok"
    assert result == [alone(body) for body in batch]


def test_a_clean_batch_takes_the_joined_path() -> None:
    """The fast path is really taken for ordinary bodies (and refused for a trap)."""
    assert _parse_joined([VALID] * 3) == [json.loads(VALID)] * 3
    assert _parse_joined(["{}", "{},{}"]) is None
