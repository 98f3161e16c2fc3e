"""app_version -> integer: the encoding and its edge cases."""

from __future__ import annotations

import pytest
from login_etl.versions import InvalidVersionError, encode_app_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.3.0", 2_003_000),
        ("0.96", 96_000),  # two parts are MAJOR.MINOR
        ("2.0", 2_000_000),
        ("2.00", 2_000_000),  # parts are numbers: "2.00" == "2.0"
        ("2", 2_000_000),
        ("v1.2.3", 1_002_003),
        ("1.2.3-beta.1", 1_002_003),
        ("1.2.3+build.7", 1_002_003),
        ("1.2.3-rc1+exp.sha.5114f85", 1_002_003),
        ("0.0.0", 0),
        ("999.999.999", 999_999_999),
        ("007.010.001", 7_010_001),
    ],
)
def test_valid_versions_encode(text: str, expected: int) -> None:
    assert encode_app_version(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "1.",
        ".1",
        "1..2",
        "1.2.3.4",
        "1000.0.0",
        "1.1000",
        "a.b.c",
        "V1.2",
        " 1.2",
        "1.2 ",
        "1.2.3-",
        "1.2.3+",
        "-1.2",
        "\u0661.\u0662",  # Arabic-Indic digits: int() would accept them, the contract does not
        "1,2",
        "2.x",
    ],
)
def test_invalid_versions_are_refused_without_echoing_the_text(text: str) -> None:
    with pytest.raises(InvalidVersionError) as info:
        encode_app_version(text)
    # One fixed message whatever the input: the text itself is never echoed.
    assert str(info.value) == "app_version is not MAJOR[.MINOR[.PATCH]] with parts 0-999"


def test_encoding_preserves_order() -> None:
    ordered = ["0.1", "0.9", "0.10", "0.96", "1.0.0-alpha", "1.0.1", "1.2", "1.10", "2.0.0", "10.0"]
    codes = [encode_app_version(v) for v in ordered]
    assert codes == sorted(codes)


def test_encoding_fits_a_postgres_integer() -> None:
    assert encode_app_version("999.999.999") < 2**31 - 1
