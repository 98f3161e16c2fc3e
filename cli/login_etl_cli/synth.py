"""Deterministic synthetic login bodies: realistic enough to exercise every path of the job.

- A pool of users (about one per four logins), each with one or two devices (fixed type, id and
  app version) and one to three IP addresses (IPv4, and IPv6 for about one user in six), so the
  same masked ip and device_id recur and duplicates are visible in SQL.
- Locales: mostly ISO country codes; about 29% null (as in the exercise data), a few absent.
- app_version in every accepted form: ``1``, ``1.2``, ``1.2.3``, ``v1.2.3``,
  ``1.2.3-beta+build``, two-digit minors such as ``0.96`` and ``2.00``.
- A few valid logins arrive in an SNS or EventBridge envelope, which the handler unwraps.
- ``invalid_ratio`` of the bodies are malformed, cycling through every reject reason a body can
  earn (``db_rejected`` needs a database refusal, so it cannot be generated here).
- ``duplicate_ratio`` of the bodies repeat an earlier body exactly: a different message, so a
  second row (or a second reject), unlike a redelivery.

The same ``seed`` always gives the same bodies. ``Synthetic.expected`` says what the job must do
with them, so tests and the demo can check the outcome exactly.
"""

from __future__ import annotations

import ipaddress
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["APP_VERSIONS", "INVALID_REASONS", "Synthetic", "generate"]

#: Every accepted app_version form; the weights favour plain MAJOR.MINOR.PATCH.
APP_VERSIONS: Final = (
    "2.3.0", "0.2.6", "5.1.4", "3.7.12", "1", "4", "1.2", "2.10",
    "0.96", "2.00", "v1.2.3", "v3.0", "1.2.3-beta+build", "2.0.0-rc.1", "4.5.6+20240101",
)  # fmt: skip
_VERSION_WEIGHTS: Final = (20, 15, 15, 10, 2, 1, 3, 2, 2, 2, 3, 1, 2, 1, 1)
_DEVICE_TYPES: Final = ("android", "ios", "android", "ios", "web", "tablet")
_LOCALES: Final = ("RU", "PH", "US", "BR", "DE", "IN", "ID", "FR", "NG", "JP", "CN", "MX", "ES", "GB")
_NULL_LOCALE_P: Final = 0.29
_ABSENT_LOCALE_P: Final = 0.02
_IPV6_USER_P: Final = 1 / 6
_ENVELOPE_P: Final = 0.02

#: The reject reasons a body alone can earn, in the order the generator cycles through them.
INVALID_REASONS: Final = (
    "not_json",
    "not_object",
    "bad_envelope",
    "missing_field",
    "bad_type",
    "too_long",
    "bad_ip",
    "bad_app_version",
)
_REQUIRED: Final = ("user_id", "app_version", "device_type", "ip", "device_id")
_ABSENT: Final = object()  # marks a required key to delete


@dataclass
class Synthetic:
    """Generated bodies and what the job must make of them."""

    bodies: list[str]
    #: Bodies that must become rows (duplicates included: each is a different message).
    valid: int = 0
    #: Expected rejects by reason.
    rejected: Counter[str] = field(default_factory=Counter)
    #: How many bodies repeat an earlier one exactly.
    duplicates: int = 0


@dataclass
class _User:
    user_id: str
    locale: str | None
    has_locale: bool  # False: the key is absent altogether
    devices: list[tuple[str, str, str]]  # (device_type, device_id, app_version)
    ips: list[str]


def _ip(rng: random.Random, v6: bool) -> str:
    if v6:
        # Documentation and global-unicast prefixes, printed in canonical compressed form.
        prefix = rng.choice((0x20010DB8, 0x2A0104F8, 0x24068600))
        return str(ipaddress.IPv6Address((prefix << 96) | rng.getrandbits(64)))
    return str(ipaddress.IPv4Address(rng.randrange(0x01000000, 0xDF000000)))


def _user(rng: random.Random) -> _User:
    v6 = rng.random() < _IPV6_USER_P
    roll = rng.random()
    locale: str | None = None
    if roll < _ABSENT_LOCALE_P + _NULL_LOCALE_P:
        pass
    else:
        locale = rng.choice(_LOCALES)
    devices = [
        (
            rng.choice(_DEVICE_TYPES),
            f"{rng.randrange(1000):03d}-{rng.randrange(100):02d}-{rng.randrange(10000):04d}",
            rng.choices(APP_VERSIONS, _VERSION_WEIGHTS)[0],
        )
        for _ in range(rng.choice((1, 1, 1, 2)))
    ]
    ips = [_ip(rng, v6 and rng.random() < 0.8) for _ in range(rng.choice((1, 1, 2, 3)))]
    user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return _User(user_id, locale, roll >= _ABSENT_LOCALE_P, devices, ips)


def _login(rng: random.Random, user: _User) -> dict[str, Any]:
    device_type, device_id, version = rng.choice(user.devices)
    login: dict[str, Any] = {
        "user_id": user.user_id,
        "app_version": version,
        "device_type": device_type,
        "ip": rng.choice(user.ips),
    }
    if user.has_locale:
        login["locale"] = user.locale
    login["device_id"] = device_id
    return login


def _wrap(rng: random.Random, login: dict[str, Any]) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {
            "Type": "Notification",
            "MessageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:logins",
            "Message": json.dumps(login),
        }
    return {
        "version": "0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "detail-type": "UserLogin",
        "source": "app.logins",
        "detail": login,
    }


def _invalid(rng: random.Random, reason: str, login: dict[str, Any]) -> str:
    """A body that the handler must reject with exactly ``reason``."""
    bad = dict(login)
    field_name = rng.choice(_REQUIRED)
    makers: dict[str, Callable[[], Any]] = {
        "not_json": lambda: json.dumps(login)[: rng.randrange(5, 40)],
        "not_object": lambda: rng.choice((json.dumps(list(login.values())), '"login"', "42", "null")),
        "bad_envelope": lambda: {"Type": "Notification", "Message": json.dumps(login)[:-3]},
        "missing_field": lambda: bad.update({field_name: rng.choice((None, "", _ABSENT))}),
        "bad_type": lambda: bad.update({field_name: rng.choice((42, 1.5, True, ["x"], {"v": 1}))}),
        "too_long": lambda: bad.update(
            rng.choice(({"user_id": "u" * 129}, {"device_type": "d" * 33}, {"device_id": "é" * 65}))
        ),
        "bad_ip": lambda: bad.update(
            {"ip": rng.choice(("300.1.2.3", "10.0.0.1 ", "fe80::1%eth0", "not-an-ip", "1.2.3"))}
        ),
        "bad_app_version": lambda: bad.update(
            {"app_version": rng.choice(("1.2.3.4", "latest", "1000.0.0", "1..2", "v"))}
        ),
    }
    made = makers[reason]()
    if made is None:  # the maker edited ``bad`` in place
        if bad.get(field_name) is _ABSENT:
            del bad[field_name]
        return json.dumps(bad)
    return made if isinstance(made, str) else json.dumps(made)


def generate(n: int, *, seed: int = 0, invalid_ratio: float = 0.0, duplicate_ratio: float = 0.0) -> Synthetic:
    """``n`` bodies; the ratios are probabilities per body, in [0, 1], with a sum of at most 1."""
    if n < 0:
        raise ValueError("n must be >= 0")
    if not (0 <= invalid_ratio <= 1 and 0 <= duplicate_ratio <= 1 and invalid_ratio + duplicate_ratio <= 1):
        raise ValueError("the ratios must be in [0, 1] and add up to at most 1")
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    users = [_user(rng) for _ in range(max(1, n // 4))]
    out = Synthetic(bodies=[])
    outcome: list[str | None] = []  # per body: None when valid, else its reject reason
    next_reason = 0
    for _ in range(n):
        roll = rng.random()
        if out.bodies and roll < duplicate_ratio:
            pick = rng.randrange(len(out.bodies))
            out.bodies.append(out.bodies[pick])
            outcome.append(outcome[pick])
            out.duplicates += 1
        elif roll < duplicate_ratio + invalid_ratio:
            reason = INVALID_REASONS[next_reason % len(INVALID_REASONS)]
            next_reason += 1
            out.bodies.append(_invalid(rng, reason, _login(rng, rng.choice(users))))
            outcome.append(reason)
        else:
            login = _login(rng, rng.choice(users))
            out.bodies.append(json.dumps(_wrap(rng, login) if rng.random() < _ENVELOPE_P else login))
            outcome.append(None)
    for expected in outcome:
        if expected is None:
            out.valid += 1
        else:
            out.rejected[expected] += 1
    return out
