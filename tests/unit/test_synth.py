"""The synthetic generator: deterministic, realistic, and exact about what the job must do."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter

import pytest
from login_etl.errors import RecordRejectedError
from login_etl.records import parse_login
from login_etl_cli.synth import APP_VERSIONS, INVALID_REASONS, generate


def outcomes(bodies: list[str]) -> tuple[int, Counter[str]]:
    valid, rejected = 0, Counter[str]()
    for body in bodies:
        try:
            parse_login(body)
            valid += 1
        except RecordRejectedError as err:
            rejected[err.reason] += 1
    return valid, rejected


def test_the_same_seed_gives_the_same_bodies_and_another_seed_does_not() -> None:
    assert generate(200, seed=5).bodies == generate(200, seed=5).bodies
    assert generate(200, seed=5).bodies != generate(200, seed=6).bodies


@pytest.mark.parametrize(("invalid", "duplicate"), [(0.0, 0.0), (0.2, 0.1), (1.0, 0.0), (0.0, 0.5)])
def test_expected_outcome_matches_what_the_validator_does(invalid: float, duplicate: float) -> None:
    spec = generate(1000, seed=1, invalid_ratio=invalid, duplicate_ratio=duplicate)

    assert len(spec.bodies) == 1000
    assert outcomes(spec.bodies) == (spec.valid, spec.rejected)
    assert spec.valid + sum(spec.rejected.values()) == 1000


def test_every_reject_reason_a_body_can_earn_appears() -> None:
    spec = generate(400, seed=2, invalid_ratio=0.5)
    assert set(spec.rejected) == set(INVALID_REASONS)


def test_duplicates_repeat_an_earlier_body_exactly() -> None:
    spec = generate(500, seed=3, duplicate_ratio=0.2)
    repeats = len(spec.bodies) - len(set(spec.bodies))
    assert spec.duplicates > 50
    assert repeats >= spec.duplicates  # the same login can also recur by chance


def test_logins_look_real_repeated_users_devices_and_ips_null_locales_ipv4_and_ipv6() -> None:
    logins = [json.loads(b) for b in generate(2000, seed=4).bodies]
    plain = [x for x in logins if "user_id" in x]  # not the few SNS/EventBridge envelopes
    assert len(plain) < len(logins)  # some envelopes are there
    users = Counter(x["user_id"] for x in plain)
    assert len(users) < len(plain) / 2  # users come back
    assert len({x["device_id"] for x in plain}) < len(plain)
    assert len({x["ip"] for x in plain}) < len(plain)
    versions = {ipaddress.ip_address(x["ip"]).version for x in plain}
    assert versions == {4, 6}
    nulls = sum(1 for x in plain if x.get("locale", "absent") is None)
    assert 0.2 < nulls / len(plain) < 0.4
    assert any("locale" not in x for x in plain)


def test_every_app_version_form_is_generated() -> None:
    seen = {json.loads(b)["app_version"] for b in generate(3000, seed=0).bodies if '"user_id"' in b[:12]}
    assert seen == set(APP_VERSIONS)
    for form in ("1", "1.2", "1.2.3-beta+build", "v1.2.3", "0.96", "2.00"):
        assert form in seen


def test_bad_ratios_are_refused() -> None:
    with pytest.raises(ValueError, match="ratios"):
        generate(10, invalid_ratio=0.7, duplicate_ratio=0.7)
