"""The key ring: masking is deterministic, reversible, field-separated and rotation-safe."""

from __future__ import annotations

import base64
import secrets

import pytest
from Crypto.Cipher import AES
from login_etl.errors import KeyRingError, RevealError
from login_etl.pii import KeyRing, unb64url


def spec(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


@pytest.fixture
def k1() -> bytes:
    return secrets.token_bytes(64)


def test_mask_is_deterministic_and_prefixed(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("k1", k1))
    a, b = ring.mask("199.172.111.135", b"ip"), ring.mask("199.172.111.135", b"ip")
    assert a == b and a.startswith("k1:") and "=" not in a


def test_stored_form_is_pycryptodome_siv_with_the_field_name_as_associated_data(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("k1", k1))
    cipher = AES.new(k1, AES.MODE_SIV)
    cipher.update(b"device_id")
    ciphertext, tag = cipher.encrypt_and_digest(b"593-47-5928")
    assert unb64url(ring.mask("593-47-5928", b"device_id").split(":", 1)[1]) == tag + ciphertext


def test_fields_are_separate_domains(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("k1", k1))
    assert ring.mask("same", b"ip") != ring.mask("same", b"device_id")
    assert ring.reveal(ring.mask("same", b"device_id")) == ("device_id", "same")


def test_longest_device_id_fits_varchar_256(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("a-32-character-key-id-0123456789", k1))
    assert len(ring.mask("€" * 42 + "ab", b"device_id")) <= 256


def test_rotation_keeps_old_values_readable_but_changes_new_masks(k1: bytes) -> None:
    old = KeyRing.from_spec(spec("k1", k1))
    masked_old = old.mask("10.0.0.1", b"ip")
    rotated = KeyRing.from_spec(f"{spec('k1', k1)},{spec('k2', secrets.token_bytes(64))}", "k2")
    masked_new = rotated.mask("10.0.0.1", b"ip")
    assert masked_new.startswith("k2:") and masked_new != masked_old
    assert rotated.reveal(masked_old) == rotated.reveal(masked_new) == ("ip", "10.0.0.1")


def test_tampered_or_foreign_values_do_not_reveal(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("k1", k1))
    masked = ring.mask("10.0.0.1", b"ip")
    flipped = masked[:-1] + ("A" if masked[-1] != "A" else "B")
    for bad in (flipped, "k9:" + masked[3:], "no-colon", "k1:!!!"):
        with pytest.raises(RevealError):
            ring.reveal(bad)


def test_secret_json_form(k1: bytes) -> None:
    k2 = secrets.token_bytes(32)
    ring = KeyRing.from_secret(
        {
            "active": "k2",
            "keys": {"k1": base64.b64encode(k1).decode(), "k2": base64.urlsafe_b64encode(k2).decode()},
        }
    )
    assert ring.active_id == "k2"
    assert ring.mask("x", b"ip").startswith("k2:")


@pytest.mark.parametrize(
    ("key_spec", "message"),
    [
        ("", "PII_KEYS must look like id:base64key[,id:base64key...]"),
        ("k1", "PII_KEYS must look like id:base64key[,id:base64key...]"),
        ("k1:@@@@", "PII key 'k1' is not valid base64"),
        (
            "k1:" + base64.b64encode(b"short").decode(),
            "PII key 'k1' is 5 bytes; AES-SIV keys here are 32 or 64 random bytes",
        ),
        (
            "bad id:" + base64.b64encode(bytes(32)).decode(),
            "PII_KEYS entry 1: the key id must be 1-32 characters of A-Z a-z 0-9 _ . - "
            "(is it written key first?)",
        ),
    ],
)
def test_bad_keys_are_clear_startup_errors_that_never_echo_the_key(key_spec: str, message: str) -> None:
    with pytest.raises(KeyRingError) as info:
        KeyRing.from_spec(key_spec)
    assert str(info.value) == message


def test_unknown_active_key_is_refused(k1: bytes) -> None:
    with pytest.raises(KeyRingError, match="active PII key id 'k2' is not in the key ring"):
        KeyRing.from_spec(spec("k1", k1), "k2")


def test_repr_shows_ids_not_keys(k1: bytes) -> None:
    ring = KeyRing.from_spec(spec("k1", k1))
    assert repr(ring) == "KeyRing(ids=['k1'], active='k1')"
