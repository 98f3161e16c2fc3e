"""``reveal`` of something that is not a masked value says so, never "does not decrypt".

"does not decrypt ... under the key ring" sends an operator looking for a missing or retired key
when the value was a raw ip pasted by mistake, or a truncated copy. A value that is not of the
form ``mask`` produces (``<key id>:<base64url>``) is now "not a masked value", and no message
ever echoes the value. The form check is held to what ``mask`` really produces (Hypothesis).
"""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st
from login_etl.constants import AD_DEVICE_ID, AD_IP
from login_etl.errors import RevealError
from login_etl.pii import KeyRing, is_masked_form

RING = KeyRing.from_spec("k1:" + secrets.token_urlsafe(64))
OTHER = KeyRing.from_spec("k2:" + secrets.token_urlsafe(64))
NOT_MASKED = "not a masked value (expected <key id>:<base64url>)"
NOT_DECRYPTED = "the value does not decrypt as an ip or a device_id under the key ring"
GOOD = RING.mask("10.0.0.1", AD_IP)

#: Values that are not masked values at all, each by one way of breaking the form.
NOT_MASKED_VALUES = {
    "a raw ip": "10.0.0.1",
    "a raw IPv6": "2001:db8::1",
    "a device id": "d-12345-abcdef",
    "empty": "",
    "a key id alone": "k1",
    "a key id and a colon": "k1:",
    "too short to hold the tag": "k1:not-a-value",
    "padded base64": GOOD + "==",
    "standard base64 alphabet": GOOD[:3] + "+/" + GOOD[5:],
    "a space inside": GOOD[:10] + " " + GOOD[11:],
    "a length no base64 has": GOOD + "A" * (4 - (len(GOOD) - 3) % 4 + 1),
    "no key id": GOOD[2:],
    "a key id too long": "k" * 33 + GOOD[2:],
    "a key id with a space": "k 1" + GOOD[2:],
    "two colons": "k1:" + GOOD,
}


@pytest.mark.parametrize("case", sorted(NOT_MASKED_VALUES))
def test_a_value_not_of_the_masked_form_is_called_not_a_masked_value(case: str) -> None:
    value = NOT_MASKED_VALUES[case]
    assert not is_masked_form(value)
    with pytest.raises(RevealError) as raised:
        RING.reveal(value)
    assert str(raised.value) == NOT_MASKED


def test_a_masked_value_that_does_not_decrypt_still_says_so() -> None:
    flipped = GOOD[:-1] + ("A" if GOOD[-1] != "A" else "B")
    for value in (flipped, OTHER.mask("10.0.0.1", AD_IP), "k9" + GOOD[2:]):
        assert is_masked_form(value)
        with pytest.raises(RevealError) as raised:
            RING.reveal(value)
        assert str(raised.value) == NOT_DECRYPTED


@given(st.text(), st.sampled_from([AD_IP, AD_DEVICE_ID]))
def test_everything_mask_produces_is_of_the_masked_form(plain: str, ad: bytes) -> None:
    masked = RING.mask(plain, ad)
    assert is_masked_form(masked)
    assert RING.reveal(masked)[1] == plain


@given(st.text())
def test_no_reveal_error_echoes_the_value(value: str) -> None:
    try:
        RING.reveal(value)
    except RevealError as exc:
        assert str(exc) in (NOT_MASKED, NOT_DECRYPTED)
