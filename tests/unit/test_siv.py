"""AES-SIV: RFC 5297 vectors, byte-identity with pycryptodome's MODE_SIV, and failure modes."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl.siv import SivCipher, _counter_blocks

KEY_SIZES = (32, 48, 64)
AD_CASES: tuple[tuple[bytes, ...], ...] = (
    (),
    (b"ip",),
    (b"device_id",),
    (b"",),
    (b"ip", b"device_id"),
    (bytes(range(16)), b"x" * 33, b"nonce-123"),
)
_RNG = random.Random(5297)
KEYS = {size: [_RNG.randbytes(size) for _ in range(3)] for size in KEY_SIZES}


def reference(key: bytes, plaintext: bytes, *associated_data: bytes) -> bytes:
    """pycryptodome's SIV, rearranged into our tag || ciphertext form."""
    cipher = AES.new(key, AES.MODE_SIV)
    for component in associated_data:
        cipher.update(component)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return bytes(tag + ciphertext)


# --- RFC 5297, Appendix A ---------------------------------------------------------------------

RFC_A1_KEY = bytes.fromhex("fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff")
RFC_A1_AD = bytes.fromhex("10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627")
RFC_A1_PLAINTEXT = bytes.fromhex("11223344 55667788 99aabbcc ddee")
RFC_A1_OUTPUT = bytes.fromhex("85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c")

RFC_A2_KEY = bytes.fromhex("7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f")
RFC_A2_AD1 = bytes.fromhex(
    "00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 77665544 33221100"
)
RFC_A2_AD2 = bytes.fromhex("10203040 50607080 90a0")
RFC_A2_NONCE = bytes.fromhex("09f91102 9d74e35b d84156c5 635688c0")
RFC_A2_PLAINTEXT = bytes.fromhex(
    "74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970"
    " 74207573 696e6720 5349562d 414553"
)
RFC_A2_OUTPUT = bytes.fromhex(
    "7bdb6e3b 432667eb 06f4d14b ff2fbd0f cb900f2f ddbe4043 26601965 c889bf17"
    " dba77ceb 094fa663 b7a3f748 ba8af829 ea64ad54 4a272e9c 485b62a3 fd5c0d"
)
RFC_A2_ADS = (RFC_A2_AD1, RFC_A2_AD2, RFC_A2_NONCE)


def test_rfc5297_a1_deterministic() -> None:
    cipher = SivCipher(RFC_A1_KEY)
    assert cipher.encrypt(RFC_A1_PLAINTEXT, RFC_A1_AD) == RFC_A1_OUTPUT
    assert cipher.decrypt(RFC_A1_OUTPUT, RFC_A1_AD) == RFC_A1_PLAINTEXT


def test_rfc5297_a2_nonce_based() -> None:
    cipher = SivCipher(RFC_A2_KEY)
    assert cipher.encrypt(RFC_A2_PLAINTEXT, *RFC_A2_ADS) == RFC_A2_OUTPUT
    assert cipher.decrypt(RFC_A2_OUTPUT, *RFC_A2_ADS) == RFC_A2_PLAINTEXT


def test_rfc5297_vectors_match_reference() -> None:
    """Guards the typed-in vectors themselves."""
    assert reference(RFC_A1_KEY, RFC_A1_PLAINTEXT, RFC_A1_AD) == RFC_A1_OUTPUT
    assert reference(RFC_A2_KEY, RFC_A2_PLAINTEXT, *RFC_A2_ADS) == RFC_A2_OUTPUT


# --- byte-identity with pycryptodome ----------------------------------------------------------


@pytest.mark.parametrize("length", range(49))
@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_matches_pycryptodome_every_length_to_48(key_size: int, length: int) -> None:
    rng = random.Random(f"{key_size}-{length}")
    for key in KEYS[key_size]:
        cipher = SivCipher(key)
        for ads in AD_CASES:
            plaintext = rng.randbytes(length)
            expected = reference(key, plaintext, *ads)
            assert cipher.encrypt(plaintext, *ads) == expected
            assert cipher.decrypt(expected, *ads) == plaintext


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_matches_pycryptodome_lengths_to_200_and_long(key_size: int) -> None:
    rng = random.Random(key_size)
    key = KEYS[key_size][0]
    cipher = SivCipher(key)
    # Past 16 blocks the counter blocks are built without the precomputed tables.
    for length in [*range(49, 201), 255, 256, 257, 272, 273, 1000, 4099]:
        for ads in ((b"ip",), (b"device_id",), (b"a", b"b", b"c")):
            plaintext = rng.randbytes(length)
            expected = reference(key, plaintext, *ads)
            assert cipher.encrypt(plaintext, *ads) == expected
            assert cipher.decrypt(expected, *ads) == plaintext


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(KEY_SIZES).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    plaintext=st.binary(max_size=200),
    ads=st.lists(st.binary(max_size=40), max_size=5),
)
def test_matches_pycryptodome_hypothesis(key: bytes, plaintext: bytes, ads: list[bytes]) -> None:
    cipher = SivCipher(key)
    expected = reference(key, plaintext, *ads)
    # Twice: the second call runs on the cached AD prefix and the reused CBC object.
    assert cipher.encrypt(plaintext, *ads) == expected
    assert cipher.encrypt(plaintext, *ads) == expected
    assert cipher.decrypt(expected, *ads) == plaintext


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.binary(max_size=130), min_size=1, max_size=20))
def test_one_cipher_many_values_matches(values: list[bytes]) -> None:
    """Interleaved lengths exercise the tracked CBC chaining value between calls."""
    key = KEYS[64][1]
    cipher = SivCipher(key)
    for i, value in enumerate(values):
        ad = b"ip" if i % 2 else b"device_id"
        assert cipher.encrypt(value, ad) == reference(key, value, ad)


def test_deterministic_and_ad_separated() -> None:
    cipher = SivCipher(KEYS[64][0])
    assert cipher.encrypt(b"10.0.0.1", b"ip") == cipher.encrypt(b"10.0.0.1", b"ip")
    assert cipher.encrypt(b"10.0.0.1", b"ip") != cipher.encrypt(b"10.0.0.1", b"device_id")
    # Component boundaries matter: ("ab", "c") is not ("a", "bc").
    assert cipher.encrypt(b"v", b"ab", b"c") != cipher.encrypt(b"v", b"a", b"bc")


def test_ad_component_limit_matches_pycryptodome() -> None:
    key = KEYS[32][0]
    cipher = SivCipher(key)
    ads = tuple(bytes([i]) for i in range(126))
    assert cipher.encrypt(b"x", *ads) == reference(key, b"x", *ads)
    with pytest.raises(ValueError, match="at most 126"):
        cipher.encrypt(b"x", *ads, b"one too many")
    with pytest.raises(TypeError):
        reference(key, b"x", *ads, b"one too many")


def test_prefix_cache_is_bounded() -> None:
    key = KEYS[48][0]
    cipher = SivCipher(key)
    for i in range(400):
        nonce = i.to_bytes(4)
        assert cipher.encrypt(b"payload", nonce) == reference(key, b"payload", nonce)
    assert len(cipher._prefixes) <= 256


def test_threads_share_one_cipher() -> None:
    key = KEYS[64][2]
    cipher = SivCipher(key)
    rng = random.Random(7)
    values = [rng.randbytes(rng.randrange(0, 130)) for _ in range(300)]
    expected = [reference(key, v, b"device_id") for v in values]
    failures: list[int] = []

    def work(offset: int) -> None:
        for _ in range(5):
            for i in range(len(values)):
                j = (i + offset) % len(values)
                if cipher.encrypt(values[j], b"device_id") != expected[j]:
                    failures.append(j)

    threads = [threading.Thread(target=work, args=(k * 37,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_interrupted_cbc_call_does_not_poison_later_results() -> None:
    """An exception after the CBC object advanced must not leave a stale chaining value."""
    key = KEYS[64][0]
    cipher = SivCipher(key)
    long_value = b"d" * 100
    assert cipher.encrypt(long_value, b"device_id") == reference(key, long_value, b"device_id")

    class Interrupting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def encrypt(self, data: bytes) -> bytes:
            self.inner.encrypt(data)  # the real object advances its chaining value
            raise KeyboardInterrupt

    real, chain = cipher._local.cbc
    cipher._local.cbc = (Interrupting(real), chain)
    with pytest.raises(KeyboardInterrupt):
        cipher.encrypt(long_value, b"device_id")
    for value in (long_value, b"e" * 17, b"f" * 64):
        assert cipher.encrypt(value, b"device_id") == reference(key, value, b"device_id")


# --- counter wrap-around ----------------------------------------------------------------------

_M128 = (1 << 128) - 1
_SIV_MAX_Q = _M128 & 0xFFFFFFFFFFFFFFFF7FFFFFFF7FFFFFFF


@pytest.mark.parametrize("q", [_M128, _M128 - 1, _M128 - 5, _SIV_MAX_Q, _SIV_MAX_Q - 3, 0])
@pytest.mark.parametrize("nblocks", [1, 2, 3, 9, 17, 40])
def test_counter_blocks_wrap_like_pycryptodome_ctr(q: int, nblocks: int) -> None:
    key = KEYS[32][0][:16]
    ours = AES.new(key, AES.MODE_ECB).encrypt(_counter_blocks(q, nblocks))
    theirs = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=q).encrypt(bytes(16 * nblocks))
    assert ours == theirs


@pytest.mark.parametrize("tag_byte", [0xFF, 0xFE, 0x7F, 0x00])
@pytest.mark.parametrize("length", [1, 15, 16, 17, 45, 128, 300])
@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_ctr_near_top_of_counter_space(key_size: int, tag_byte: int, length: int) -> None:
    """A tag of all 0xFF gives the largest Q SIV can produce; compare the keystream with
    pycryptodome's CTR as MODE_SIV configures it (finding a real SIV input with such a tag would
    need ~2**128 tries)."""
    key = KEYS[key_size][1]
    cipher = SivCipher(key)
    tag = bytes([tag_byte]) * 16
    data = random.Random(length).randbytes(length)
    q = int.from_bytes(tag) & 0xFFFFFFFFFFFFFFFF7FFFFFFF7FFFFFFF
    ctr = AES.new(key[key_size // 2 :], AES.MODE_CTR, nonce=b"", initial_value=q)
    assert cipher._ctr_xor(tag, data) == ctr.encrypt(data)


# --- failure modes ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 5, 15, 16, 31, 32, 33, 45, 128])
def test_round_trip_and_every_single_byte_tamper_is_rejected(length: int) -> None:
    cipher = SivCipher(KEYS[64][0])
    plaintext = random.Random(length).randbytes(length)
    sealed = cipher.encrypt(plaintext, b"ip")
    assert cipher.decrypt(sealed, b"ip") == plaintext
    for i in range(len(sealed)):
        for flip in (0x01, 0x80, 0xFF):
            tampered = bytearray(sealed)
            tampered[i] ^= flip
            with pytest.raises(ValueError, match=r"^SIV authentication failed$"):
                cipher.decrypt(bytes(tampered), b"ip")


def test_truncated_or_extended_ciphertext_is_rejected() -> None:
    cipher = SivCipher(KEYS[32][0])
    sealed = cipher.encrypt(b"device-000001", b"device_id")
    with pytest.raises(ValueError, match="authentication failed"):
        cipher.decrypt(sealed[:-1], b"device_id")
    with pytest.raises(ValueError, match="authentication failed"):
        cipher.decrypt(sealed + b"\x00", b"device_id")


def test_wrong_ad_is_rejected() -> None:
    cipher = SivCipher(KEYS[64][0])
    sealed = cipher.encrypt(b"203.0.113.9", b"ip")
    for ads in ((b"device_id",), (), (b"ip", b"ip"), (b"IP",), (b"",)):
        with pytest.raises(ValueError, match="authentication failed"):
            cipher.decrypt(sealed, *ads)
    multi = cipher.encrypt(b"203.0.113.9", b"a", b"b")
    with pytest.raises(ValueError, match="authentication failed"):
        cipher.decrypt(multi, b"b", b"a")


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_wrong_key_is_rejected(key_size: int) -> None:
    sealed = SivCipher(KEYS[key_size][0]).encrypt(b"203.0.113.9", b"ip")
    with pytest.raises(ValueError, match="authentication failed"):
        SivCipher(KEYS[key_size][1]).decrypt(sealed, b"ip")
    # Same CTR half, different MAC half (and vice versa): still rejected.
    half = key_size // 2
    other = KEYS[key_size][1]
    for key in (other[:half] + KEYS[key_size][0][half:], KEYS[key_size][0][:half] + other[half:]):
        with pytest.raises(ValueError, match="authentication failed"):
            SivCipher(key).decrypt(sealed, b"ip")


@pytest.mark.parametrize("length", range(16))
def test_input_shorter_than_tag_is_rejected(length: int) -> None:
    with pytest.raises(ValueError, match="shorter than the 16-byte tag"):
        SivCipher(KEYS[32][0]).decrypt(b"\x00" * length, b"ip")


def test_tag_only_input_is_empty_plaintext() -> None:
    cipher = SivCipher(KEYS[48][0])
    sealed = cipher.encrypt(b"", b"ip")
    assert len(sealed) == 16
    assert cipher.decrypt(sealed, b"ip") == b""


@pytest.mark.parametrize("length", [0, 1, 16, 24, 31, 33, 47, 63, 65, 96, 128])
def test_bad_key_length_is_rejected(length: int) -> None:
    with pytest.raises(ValueError, match="32, 48 or 64 bytes"):
        SivCipher(b"k" * length)


def test_errors_and_repr_carry_no_secrets() -> None:
    key = bytes(range(64))
    cipher = SivCipher(key)
    plaintext = b"198.51.100.77"
    sealed = cipher.encrypt(plaintext, b"ip")
    with pytest.raises(ValueError) as excinfo:
        cipher.decrypt(sealed[:-1] + bytes([sealed[-1] ^ 1]), b"ip")
    text = str(excinfo.value) + repr(excinfo.value) + repr(cipher)
    for secret in (key.hex(), key[:8].hex(), plaintext.decode(), plaintext.hex()):
        assert secret not in text
