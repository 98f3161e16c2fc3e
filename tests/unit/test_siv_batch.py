"""Batch masking (``SivCipher.encrypt_many``, ``KeyRing.mask_many``) is byte-identical to
pycryptodome's MODE_SIV and to the single-value path, whatever the batch is made of."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl.pii import KeyRing, b64url, b64url_many
from login_etl.siv import SivCipher
from unit.test_siv import reference

KEY_SIZES = (32, 48, 64)
ADS = ((b"ip",), (b"device_id",), (), (b"a", b"bc"))


# Lengths that cross every branch: empty, short (one block), exactly one/two/three blocks, and
# multi-block with every padding; weighted toward the real mix (7-15 and 11 bytes).
lengths = st.one_of(
    st.integers(0, 15),
    st.sampled_from([7, 11, 15, 16, 17, 31, 32, 33, 39, 45, 47, 48, 49]),
    st.integers(16, 130),
)
values = lengths.flatmap(lambda n: st.binary(min_size=n, max_size=n))
keys = st.sampled_from(KEY_SIZES).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(key=keys, batch=st.lists(values, max_size=40), ads=st.sampled_from(ADS))
def test_encrypt_many_matches_pycryptodome(key: bytes, batch: list[bytes], ads: tuple[bytes, ...]) -> None:
    cipher = SivCipher(key)
    got = cipher.encrypt_many(batch, *ads)
    assert got == [reference(key, value, *ads) for value in batch]
    assert got == [cipher.encrypt(value, *ads) for value in batch]
    # Every output opens on the single-value path (the one reveal uses).
    assert [cipher.decrypt(sealed, *ads) for sealed in got] == batch


@settings(max_examples=100, deadline=None)
@given(key=keys, batch=st.lists(values, min_size=1, max_size=10), repeat=st.integers(1, 4))
def test_duplicates_in_one_batch_give_equal_outputs(key: bytes, batch: list[bytes], repeat: int) -> None:
    cipher = SivCipher(key)
    got = cipher.encrypt_many(batch * repeat, b"ip")
    assert got == cipher.encrypt_many(batch, b"ip") * repeat


@pytest.mark.parametrize("key_size", KEY_SIZES)
def test_a_large_batch_of_the_real_length_mix(key_size: int) -> None:
    """10,000 values shaped like the real data (dotted quads, ddd-dd-dddd ids) plus a tail of
    IPv6-length and long values: one call, every output equal to MODE_SIV's."""
    rng = random.Random(key_size)
    key = rng.randbytes(key_size)
    batch = [".".join(str(rng.randint(0, 255)) for _ in range(4)).encode() for _ in range(4000)]
    batch += [
        f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}".encode()
        for _ in range(4000)
    ]
    batch += [rng.randbytes(rng.randrange(0, 129)) for _ in range(2000)]
    rng.shuffle(batch)
    assert SivCipher(key).encrypt_many(batch, b"device_id") == [
        reference(key, v, b"device_id") for v in batch
    ]


@given(st.lists(st.binary(max_size=70), max_size=30))
def test_b64url_many_is_b64url_of_each(items: list[bytes]) -> None:
    assert b64url_many(items) == [b64url(item) for item in items]


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(max_size=50), max_size=20),
    key_size=st.sampled_from((32, 64)),
    ad=st.sampled_from((b"ip", b"device_id")),
)
def test_mask_many_is_mask_of_each(texts: list[str], key_size: int, ad: bytes) -> None:
    ring = KeyRing({"k1": bytes(range(key_size)), "k2": bytes(range(1, key_size + 1))}, "k2")
    masked = ring.mask_many(texts, ad)
    assert masked == [ring.mask(text, ad) for text in texts]
    assert [ring.unmask(m, ad) for m in masked] == texts
