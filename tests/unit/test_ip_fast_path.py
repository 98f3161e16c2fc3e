"""The ip check's fast path (a regex for dotted quads) decides exactly as the exact check does:
``ipaddress.ip_address`` with the contract's extra refusals (zone ids, surrounding whitespace,
more than 45 characters). Generated over near-miss dotted quads and address-like text."""

# ruff: noqa: RUF001 - look-alike digits are the point
from __future__ import annotations

import ipaddress
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl.errors import RecordRejectedError
from login_etl.records import _IPV4, parse_login

BASE = {"user_id": "u", "device_type": "ios", "device_id": "d-1", "app_version": "1.0", "locale": None}


def contract_accepts(ip: str) -> bool:
    """The contract, spelled out with the slow, exact check alone."""
    if not ip or len(ip) > 45 or "%" in ip or ip != ip.strip():
        return False
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


def accepted(ip: str) -> bool:
    try:
        parse_login(json.dumps({**BASE, "ip": ip}))
    except RecordRejectedError as err:
        assert err.reason in {"bad_ip", "missing_field"}, err.reason
        return False
    return True


octets = st.one_of(
    st.integers(0, 300).map(str),
    st.from_regex(r"0[0-9]{1,3}", fullmatch=True),
    st.sampled_from(["", "-1", "+1", " 1", "1 ", "٣", "１", "0x1", "1e2", "²"]),
)
dotted = st.lists(octets, min_size=1, max_size=6).map(".".join)
address_like = st.text(alphabet="0123456789abcdefABCDEF.:% \n\t٣１", max_size=46)


@settings(max_examples=800, deadline=None)
@given(st.one_of(dotted, address_like))
def test_the_fast_path_and_the_exact_check_agree(ip: str) -> None:
    assert accepted(ip) == contract_accepts(ip)
    if _IPV4(ip) is not None:  # what the fast path lets through, the exact check accepts as IPv4
        assert isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
