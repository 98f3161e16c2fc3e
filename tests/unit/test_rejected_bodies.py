"""Rejected bodies are bound to their message id, and rows sealed before the binding still open."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from login_etl.constants import AD_BODY
from login_etl.errors import RevealError
from login_etl.pii import KeyRing
from login_etl.rejected import open_body, seal_body

RING = KeyRing({"k1": bytes(range(64))})
ids = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=128)


@given(body=st.text(), mid=ids, other=ids)
def test_a_body_opens_only_on_its_own_row(body: str, mid: str, other: str) -> None:
    sealed = seal_body(RING, body, mid)
    assert open_body(RING, sealed, mid) == body
    if other != mid:
        with pytest.raises(RevealError):
            open_body(RING, sealed, other)


@given(body=st.text(), mid=ids)
def test_a_row_sealed_before_the_binding_still_opens(body: str, mid: str) -> None:
    legacy = RING.mask(body, AD_BODY)
    assert open_body(RING, legacy, mid) == body


def test_a_body_is_not_a_masked_field() -> None:
    sealed = seal_body(RING, "10.0.0.1", "m-1")
    with pytest.raises(RevealError):
        RING.reveal(sealed)
