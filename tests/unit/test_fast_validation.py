"""The columnar fast path of ``parse_logins`` (``records._fast_chunk``) gives every body exactly
what ``parse_login`` gives it alone: the same ``Login`` (value and type of every field), or the
same reason and detail. Generated over batches of several chunks of valid records, with
near-misses of every field put anywhere, chunk boundaries included. And it is really taken: a
valid batch never reaches the per-record ``validate``, and one bad record sends only its own
chunk (or only itself, for an ip or a version) there."""

# ruff: noqa: RUF001 - look-alike digits are the point
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from random import Random
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from login_etl.constants import (
    MAX_DEVICE_ID_BYTES,
    MAX_DEVICE_TYPE_CHARS,
    MAX_LOCALE_CHARS,
    MAX_USER_ID_CHARS,
)
from login_etl.records import (
    _CHUNK,
    Login,
    _all_joinable,
    _joinable,
    parse_login,
    parse_logins,
    validate,
)
from unit.test_parse_logins import VALID, items
from unit.test_parse_logins import outcome as untyped_outcome

FIELDS = ("user_id", "device_type", "ip", "device_id", "app_version", "locale")
MISSING = object()  # a field left out of the body

# What any field may be instead of a good value: every JSON type, and text that is almost right.
WRONG_ANYWHERE: list[Any] = [
    MISSING, None, "", 0, 1, True, False, 2.5, [], ["a"], {}, {"a": 1},
    "\x00", "a\x00b", "\ud800", "a\udfffb", "\ud83d\ude00", "é", "😀", " ", "a\nb", "[", "{}",
]  # fmt: skip
NEAR_MISSES: dict[str, list[Any]] = {
    "user_id": [
        "u" * MAX_USER_ID_CHARS, "u" * (MAX_USER_ID_CHARS + 1), "é" * MAX_USER_ID_CHARS,
        "é" * (MAX_USER_ID_CHARS + 1), "user\x00", "user-ü",
    ],
    "device_type": [
        "d" * MAX_DEVICE_TYPE_CHARS, "d" * (MAX_DEVICE_TYPE_CHARS + 1), "ж" * MAX_DEVICE_TYPE_CHARS,
        "ios\x00",
    ],
    "ip": [
        "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.02.3.4", "1.2.3.00",
        "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\n", "1.2.3.4\n5.6.7.8",
        "١.2.3.4", "1.2.3.4\x00", "::1", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0",
        "2001:0db8:0000:0000:0000:ff00:0042:8329", "1:2:3:4:5:6:7:8:9", "1" * 46, "a.b.c.d",
    ],
    "device_id": [
        "x" * MAX_DEVICE_ID_BYTES, "x" * (MAX_DEVICE_ID_BYTES + 1), "é" * (MAX_DEVICE_ID_BYTES // 2),
        "é" * (MAX_DEVICE_ID_BYTES // 2 + 1), "€" * (MAX_DEVICE_ID_BYTES // 3),
        "€" * (MAX_DEVICE_ID_BYTES // 3 + 1), "😀" * (MAX_DEVICE_ID_BYTES // 4), "d\x00d", "\x00",
        "d" * 33, "d\ud800",
    ],
    "app_version": [
        "2.3.0", "v2.3.0", "2.3.0-beta.1+build.5", "0.96", "2", "1000.0.0", "1.2.3.4", "v", "2.3.x",
        "٣.0", "2.3.0-", " 2.3.0",
    ],
    "locale": ["RU", "l" * MAX_LOCALE_CHARS, "l" * (MAX_LOCALE_CHARS + 1), "ñ" * MAX_LOCALE_CHARS, "en\x00"],
}  # fmt: skip


def good(rng: Random, i: int, varied: bool = True) -> dict[str, Any]:
    """A valid login of the exercise's shape; if ``varied``, some have non-ASCII text, an IPv6
    ip, a version not seen before, an empty or absent locale, or extra keys (all valid)."""
    obj: dict[str, Any] = {
        "user_id": f"user-{rng.getrandbits(64):x}-{i}",
        "app_version": f"{rng.randint(0, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        "device_type": rng.choice(["android", "ios"]),
        "ip": ".".join(str(rng.randint(0, 255)) for _ in range(4)),
        "locale": rng.choice([None, "RU", "PH", "en-US"]),
        "device_id": f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
    }
    roll = rng.random() if varied else 1.0
    if roll < 0.02:
        obj["user_id"] += "-ü"
    elif roll < 0.04:
        obj["ip"] = f"2001:db8::{i:x}"
    elif roll < 0.06:
        obj["app_version"] = f"{rng.randint(0, 999)}.{rng.randint(0, 999)}.{rng.randint(0, 999)}"
    elif roll < 0.08:
        obj["locale"] = ""
    elif roll < 0.10:
        del obj["locale"]
    elif roll < 0.12:
        obj["extra"] = {"nested": 1, "ip": None}
    elif roll < 0.13:
        obj["device_id"] = "ключ-" + obj["device_id"]
    return obj


ENVELOPES = [
    "sns", "eventbridge", "sns-over-login", "eventbridge-over-login", "bad-detail-over-login",
    "type-only", "type-not-sns",
]  # fmt: skip
BODIES = ["not json", "[]", "{}", "null", "{", '{"a": 1}', None]


def envelope(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` in an envelope; some carry the login's fields outside too, so that only the
    envelope check tells which login is meant."""
    inner = {**obj, "user_id": f"{obj.get('user_id')}-inner"}
    kinds: dict[str, dict[str, Any]] = {
        "sns": {"Type": "Notification", "Message": json.dumps(obj)},
        "eventbridge": {"detail-type": "login", "detail": obj},
        "sns-over-login": {**obj, "Type": "Notification", "Message": json.dumps(inner)},
        "eventbridge-over-login": {**obj, "detail-type": "login", "detail": inner},
        "bad-detail-over-login": {**obj, "detail-type": "login", "detail": "not an object"},
        "type-only": {**obj, "Type": "Notification"},  # no Message: no envelope, read as it is
        "type-not-sns": {**obj, "Type": "Login", "Message": "x"},
    }
    return kinds[kind]


def wrong(field: str) -> list[Any]:
    return [*WRONG_ANYWHERE, *NEAR_MISSES[field]]


#: Every single change the tests make to a valid body: a field's value, an envelope, a body.
CHANGES: list[tuple[str, Any, Any]] = [
    *(("field", field, value) for field in FIELDS for value in wrong(field)),
    *(("envelope", kind, None) for kind in ENVELOPES),
    *(("body", body, None) for body in BODIES),
]
changes = st.one_of(
    st.sampled_from(FIELDS).flatmap(
        lambda field: st.tuples(st.just("field"), st.just(field), st.sampled_from(wrong(field)))
    ),
    st.sampled_from(CHANGES),
)


def changed(obj: dict[str, Any], change: tuple[str, Any, Any]) -> object:
    """``obj`` with one change: a field's value, an envelope around it, or another body."""
    kind, what, value = change
    if kind == "body":
        return what
    if kind == "envelope":
        return json.dumps(envelope(what, obj))
    obj = dict(obj)
    if value is MISSING:
        obj.pop(what, None)
    else:
        obj[what] = value
    return json.dumps(obj)


@st.composite
def batches(draw: st.DrawFn) -> list[object]:
    """Up to three chunks and a bit of valid bodies, with a few changed ones anywhere; the
    places either side of a chunk boundary, and the first and last, are drawn more often."""
    size = draw(st.sampled_from([1, 2, _CHUNK - 1, _CHUNK, _CHUNK + 1, 2 * _CHUNK + 3, 3 * _CHUNK + 7]))
    rng = Random(draw(st.integers(0, 2**32)))
    batch: list[object] = [json.dumps(good(rng, i)) for i in range(size)]
    edges = sorted({p for k in range(4) for p in (k * _CHUNK - 1, k * _CHUNK) if 0 <= p < size} | {size - 1})
    places = st.one_of(st.sampled_from(edges), st.integers(0, size - 1))
    for place, change in draw(st.lists(st.tuples(places, changes), max_size=8)):
        batch[place] = changed(good(rng, place), change)
    return batch


def outcome(result: Login | Exception) -> tuple[Any, ...]:
    """``test_parse_logins``' outcome (the Login, or the error's reason and detail), plus the
    type of each of the Login's fields: a fast path must not turn a str into anything else."""
    return (*untyped_outcome(result), tuple(map(type, result)) if isinstance(result, Login) else ())


def alone(body: object) -> tuple[Any, ...]:
    """What ``parse_login`` gives the body by itself."""
    try:
        login = parse_login(body)
    except Exception as err:  # noqa: BLE001 - compared with what parse_logins returns for it
        return outcome(err)
    return outcome(login)


@contextmanager
def counting_calls(function: Callable[..., Any]) -> Iterator[list[int]]:
    """Count the calls of a Python function while the block runs (a profile hook: nothing is
    replaced, the real code runs)."""
    code = function.__code__
    calls = [0]

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is code:
            calls[0] += 1

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_every_body_gets_what_it_gets_alone(batch: list[object]) -> None:
    # The batch first: parse_login alone memoises the versions it sees, which would hide the
    # fast path's version misses.
    together = [outcome(result) for result in parse_logins(batch)]
    assert together == [alone(body) for body in batch]


EDGES = [0, _CHUNK - 1, _CHUNK, _CHUNK + 2]


@pytest.mark.parametrize("varied", [False, True], ids=["plain", "varied"])
@pytest.mark.parametrize(("index", "change"), list(enumerate(CHANGES)), ids=lambda x: repr(x)[:40])
def test_each_change_alone_in_a_valid_batch(index: int, change: tuple[str, Any, Any], varied: bool) -> None:
    """Each change, the only one in two chunks of valid bodies (plain ones, or with IPv6, new
    versions and the like), so that nothing else refuses its chunk: the fast path itself must
    tell it apart."""
    rng = Random(index)
    batch: list[object] = [json.dumps(good(rng, i, varied)) for i in range(_CHUNK + 3)]
    place = EDGES[index % len(EDGES)]
    batch[place] = changed(good(rng, place), change)
    together = [outcome(result) for result in parse_logins(batch)]
    assert together == [alone(body) for body in batch]


def valid_batch(size: int, seed: int = 3) -> list[str]:
    """Exercise-shaped bodies whose versions are already memoised (as in any batch after the first)."""
    rng = Random(seed)
    objs = [
        {
            "user_id": f"user-{i}",
            "app_version": f"{rng.randint(0, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
            "device_type": rng.choice(["android", "ios"]),
            "ip": ".".join(str(rng.randint(0, 255)) for _ in range(4)),
            "locale": rng.choice([None, "RU", ""]),
            "device_id": f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        }
        for i in range(size)
    ]
    for obj in objs:
        parse_login(json.dumps(obj))
    return [json.dumps(obj) for obj in objs]


def test_a_valid_batch_never_reaches_validate() -> None:
    batch = valid_batch(3 * _CHUNK + 5)
    with counting_calls(validate) as calls:
        results = parse_logins(batch)
    assert calls[0] == 0
    assert [outcome(result) for result in results] == [alone(body) for body in batch]
    assert all(isinstance(result, Login) for result in results)


@pytest.mark.parametrize("place", [0, _CHUNK - 1, _CHUNK, 2 * _CHUNK + 2])
@pytest.mark.parametrize(
    ("field", "value", "slow_records"),
    [
        ("user_id", None, "chunk"),  # a chunk-wide check fails: the chunk goes record by record
        ("locale", 5, "chunk"),
        ("device_id", "x" * (MAX_DEVICE_ID_BYTES + 1), "chunk"),
        ("ip", "2001:db8::1", "one"),  # valid, not a dotted quad: that record alone
        ("ip", "01.2.3.4", "one"),
        ("app_version", "not a version", "one"),
    ],
)
def test_a_bad_record_costs_only_its_chunk(place: int, field: str, value: Any, slow_records: str) -> None:
    batch = valid_batch(2 * _CHUNK + 3)
    obj = json.loads(batch[place])
    obj[field] = value
    batch[place] = json.dumps(obj)
    with counting_calls(validate) as calls:
        results = parse_logins(batch)
    chunk_start = place - place % _CHUNK
    chunk_size = min(_CHUNK, len(batch) - chunk_start)
    assert calls[0] == (chunk_size if slow_records == "chunk" else 1)
    assert [outcome(result) for result in results] == [alone(body) for body in batch]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(items, st.just(VALID), st.just("{}")), min_size=1, max_size=8))
def test_the_batch_wide_joinable_check_is_the_per_body_one(batch: list[object]) -> None:
    assert _all_joinable(batch) == all(map(_joinable, batch))
