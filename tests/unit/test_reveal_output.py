"""``reveal`` prints one line per value, whatever the plaintext holds, and nothing that drives a
terminal; and any value, however malformed, is one failed line rather than a crash.

Generated over arbitrary text (every Unicode category, controls and separators included), with
the named classes pinned as examples: terminal escapes, vertical tab, DEL, C1 controls, U+2028.
"""

from __future__ import annotations

import io
import json

from conftest import new_key_spec
from hypothesis import example, given, settings
from hypothesis import strategies as st
from login_etl.constants import AD_DEVICE_ID, AD_IP
from login_etl.pii import KeyRing
from login_etl_cli.errors import json_string, printable
from login_etl_cli.operator import reveal_values

RING = KeyRing.from_spec(new_key_spec("k1"))
# Everything a terminal or a line splitter could act on: C0, DEL, C1, and Unicode separators.
LINE_BREAKERS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
ANY_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)


def reveal(values: list[str], *, as_json: bool = False) -> tuple[str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    failed = reveal_values(values, RING, out, err, as_json=as_json)
    return out.getvalue(), err.getvalue(), failed


def assert_safe_line(line: str) -> None:
    """No character that splits a line in any reader, or that a terminal interprets."""
    assert line.isprintable(), repr(line)
    assert not any(ch in LINE_BREAKERS for ch in line)


@settings(max_examples=300, deadline=None)
@given(plains=st.lists(ANY_TEXT, min_size=1, max_size=5), as_json=st.booleans())
@example(
    plains=["\x1b[2J\x1b[31mred", "a\vb", "del\x7f", "csi\x9b31m", "x\u2028y", "rlo\u202etxt"], as_json=False
)
@example(plains=['"quoted"', "plain", "two\nlines\r\n"], as_json=False)
def test_one_value_is_one_safe_line_and_decodes_back_exactly(plains: list[str], as_json: bool) -> None:
    masked = [RING.mask(p, AD_DEVICE_ID if i % 2 else AD_IP) for i, p in enumerate(plains)]

    out, err, failed = reveal(masked, as_json=as_json)

    assert failed == 0
    assert out.endswith("\n")
    lines = out[:-1].split("\n")
    assert len(lines) == len(plains)
    assert len(out.splitlines()) == len(plains), "no other line boundary either (VT, FF, U+2028...)"
    for line, plain in zip(lines, plains, strict=True):
        assert_safe_line(line)
        if line.startswith('"'):
            assert json.loads(line) == plain  # a line that starts with " is always JSON
        else:
            assert not as_json
            assert line == plain
    for plain in plains:
        if len(plain) >= 4:
            assert plain not in err, "stderr carries the audit line, never a value"


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(st.characters(codec=None), max_size=80), min_size=1, max_size=4))
def test_any_value_that_is_not_masked_is_an_empty_line_and_a_positioned_error(values: list[str]) -> None:
    out, err, failed = reveal(values)

    assert failed == len(values)
    assert out == "\n" * len(values)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert [e.split(":")[1].strip() for e in errors] == [f"value {i}" for i in range(1, len(values) + 1)]
    for line in err.splitlines():
        assert_safe_line(line)


@given(ANY_TEXT)
def test_printable_and_json_string_escape_exactly_what_is_not_printable(text: str) -> None:
    encoded = json_string(text)
    assert_safe_line(encoded)
    assert json.loads(encoded) == text
    assert printable(text) == (text if text.isprintable() else encoded)
