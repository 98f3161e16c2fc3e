"""Deterministic AES-SIV (RFC 5297), byte-identical to pycryptodome's ``AES.MODE_SIV``.

Why not just ``AES.new(key, AES.MODE_SIV)``: pycryptodome builds a fresh cipher, a CMAC object
per S2V component and a CTR cipher for every value, and runs S2V's doubling/XOR in Python; that
object churn dominates the cost of a field, and is paid for every ip and device_id of every row
(``make bench`` compares the two).

This module keeps the same construction but restructures the work:

* The S2V chain over the associated data (AD) does not depend on the plaintext, so it is
  computed once per (key, AD tuple) and cached, together with every constant that is XORed into
  the final CMAC input (``dbl(D)``, the CMAC subkey, the ``0x80`` padding byte).
* The remaining per-value work is one CMAC over the (AD-adjusted) plaintext and one CTR
  keystream. Both run on AES objects created once per key: a stateless ECB object for single
  blocks and the keystream, and, for multi-block CMAC inputs, a per-thread CBC object whose
  chaining value we track (see ``_cbc_mac``).
* Block XORs, ``dbl`` and the counter blocks are Python ``int`` arithmetic on whole messages,
  one ``int.from_bytes``/``to_bytes`` per value rather than per block.
* ``encrypt_many`` masks a whole batch at once: values are grouped by block count, each group's
  CMAC runs in lockstep (one ECB call per block position over that position's blocks of every
  value, since CBC-MAC block j of one value depends only on its own block j-1), the XORs with
  the constant prefix are one big-integer operation over the whole buffer, and the keystream of
  the group comes from one ECB call per block position. Per value, only the slicing that splits
  the buffers back into values remains in Python.

The wire format is ``tag (V, 16 bytes) || ciphertext``; pycryptodome's ``encrypt_and_digest``
returns the same two parts in the other order.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

__all__ = ["SivCipher"]

_BLOCK: Final = 16
_M128: Final = (1 << 128) - 1
_ZERO_BLOCK: Final = bytes(_BLOCK)
_ONE_BLOCK: Final = (1).to_bytes(_BLOCK)
#: pad(P) for a short P of n bytes is P || _PAD80[n]: the 0x80 marker, then zeros to 16 bytes.
_PAD80: Final = tuple(b"\x80" + bytes(_BLOCK - 1 - n) for n in range(_BLOCK))

# RFC 5297 section 2.5: Q = V with bits 63 and 31 (counting from the right) cleared, i.e. the top
# bit of bytes 8 and 12. The RFC clears them so that implementations doing 64- or 32-bit
# counter arithmetic cannot carry out of the low words; a side effect is that Q + i never wraps
# past 2**128 for any message shorter than 2**31 blocks.
_Q_MASK: Final = 0xFFFFFFFFFFFFFFFF7FFFFFFF7FFFFFFF
_Q_MASK_BLOCK: Final = _Q_MASK.to_bytes(_BLOCK)

# pycryptodome's S2V accepts at most 127 components (block bits - 1), the plaintext included.
_MAX_AD: Final = _BLOCK * 8 - 2

# The prefix cache is meant for a handful of constant AD tuples (b"ip", b"device_id"). If a
# caller uses a per-message nonce as AD, caching would only grow memory, so stop adding entries.
_MAX_CACHED_AD: Final = 256

# Counter blocks for n blocks are Q*_REP[n] + _INC[n] as one big int (valid while no counter
# wraps, see _counter_blocks). Precomputed for the message sizes this package produces.
_PRECOMPUTED_BLOCKS: Final = 16


def _rep(n: int) -> int:
    return int.from_bytes((b"\x00" * 15 + b"\x01") * n)


def _inc(n: int) -> int:
    return int.from_bytes(b"".join(i.to_bytes(_BLOCK) for i in range(n)))


_REP: Final = tuple(_rep(n) for n in range(_PRECOMPUTED_BLOCKS + 1))
_INC: Final = tuple(_inc(n) for n in range(_PRECOMPUTED_BLOCKS + 1))


def _dbl(x: int) -> int:
    """Doubling in GF(2^128) with the CMAC/S2V polynomial x^128 + x^7 + x^2 + x + 1."""
    x <<= 1
    if x >> 128:
        x = (x & _M128) ^ 0x87
    return x


def _counter_blocks(q: int, nblocks: int) -> bytes:
    """CTR input blocks Q, Q+1, ... (128-bit big-endian, mod 2**128) for one ECB call.

    The single-multiplication form needs every Q+i to stay below 2**128; for an SIV-derived Q
    (bits 63 and 31 clear) that holds up to 2**31 blocks, so the block-by-block fallback only
    exists to keep the function correct for any Q.
    """
    if q + nblocks - 1 <= _M128:
        if nblocks <= _PRECOMPUTED_BLOCKS:
            return (q * _REP[nblocks] + _INC[nblocks]).to_bytes(nblocks * _BLOCK)
        return (q * _rep(nblocks) + _inc(nblocks)).to_bytes(nblocks * _BLOCK)
    return b"".join(((q + i) & _M128).to_bytes(_BLOCK) for i in range(nblocks))


class _Prefix:
    """Everything in S2V's final CMAC input that depends on the key and AD but not on P.

    ``short[n]`` (n = len(P) < 16): the CMAC input is the single complete block
    ``pad(P) ^ dbl(D) ^ K1'``, which is ``(P << 8*(16-n)) ^ short[n]``.
    ``long[p]`` (len(P) >= 16, p = padding bytes): the CMAC input is ``(P xorend D)``, padded
    and with the subkey folded into its last block, which is ``(P << 8*p) ^ long[p]``.
    ``dd`` (bytes): ``dbl(D) ^ K1'``, the part of ``short[n]`` that does not depend on n, so a
    batch of short values is ``pad(P_1) || pad(P_2) ...`` XORed with ``dd`` repeated.
    """

    __slots__ = ("dd", "long", "short")

    def __init__(self, short: tuple[int, ...], long: tuple[int, ...], dd: bytes) -> None:
        self.short = short
        self.long = long
        self.dd = dd


class SivCipher:
    """Deterministic AES-SIV bound to one key; safe to reuse across calls and threads.

    Masking PII deterministically lets equal values be matched (joins, idempotency) without
    storing them in clear; SIV gives that while still authenticating the value and its AD.
    """

    __slots__ = ("_cbc_key", "_ctr", "_local", "_mac", "_prefixes", "_subkeys")

    def __init__(self, key: bytes) -> None:
        if len(key) not in (32, 48, 64):
            # The length is not secret; the key bytes never go into a message.
            raise ValueError("AES-SIV key must be 32, 48 or 64 bytes")
        half = len(key) // 2
        mac_key = bytes(key[:half])
        # ECB objects hold only the expanded key, so one instance per key half can be shared by
        # every call and thread.
        mac_ecb = AES.new(mac_key, AES.MODE_ECB)
        ctr_ecb = AES.new(bytes(key[half:]), AES.MODE_ECB)
        self._mac: Callable[[bytes], bytes] = mac_ecb.encrypt
        self._ctr: Callable[[bytes], bytes] = ctr_ecb.encrypt
        self._cbc_key = mac_key
        self._local = threading.local()
        k1 = _dbl(int.from_bytes(self._mac(_ZERO_BLOCK)))
        self._subkeys = (k1, _dbl(k1))
        self._prefixes: dict[tuple[bytes, ...], _Prefix] = {}

    def encrypt(self, plaintext: bytes, *associated_data: bytes) -> bytes:
        """Mask ``plaintext``; equal (plaintext, AD) pairs always give equal output."""
        prefix = self._prefixes.get(associated_data) or self._prefix(associated_data)
        n = len(plaintext)
        if n < _BLOCK:
            # The common case (IPv4, short device ids), inlined: it is exactly _s2v's one-block
            # branch followed by _ctr_xor's one-block branch, and saves two calls' overhead.
            p = int.from_bytes(plaintext)
            shift = 8 * (_BLOCK - n)
            tag = self._mac(((p << shift) ^ prefix.short[n]).to_bytes(_BLOCK))
            if not n:
                return tag
            keystream = self._ctr((int.from_bytes(tag) & _Q_MASK).to_bytes(_BLOCK))
            return tag + ((int.from_bytes(keystream) >> shift) ^ p).to_bytes(n)
        tag = self._s2v(prefix, plaintext)
        return tag + self._ctr_xor(tag, plaintext)

    def encrypt_many(self, plaintexts: Sequence[bytes], *associated_data: bytes) -> list[bytes]:
        """``[encrypt(p, *associated_data) for p in plaintexts]``, computed for the batch at once.

        A batch's values have few distinct block counts (an IPv4 address or a short device id
        is one block), so the work is a handful of C calls over large buffers rather than a few
        C calls per value.
        """
        prefix = self._prefixes.get(associated_data) or self._prefix(associated_data)
        if max(map(len, plaintexts), default=0) < _BLOCK:
            return self._short_many(prefix, plaintexts)
        short: list[int] = []
        long: dict[int, list[int]] = {}
        for i, p in enumerate(plaintexts):
            n = len(p)
            if n < _BLOCK:
                short.append(i)
            else:
                long.setdefault((n + _BLOCK - 1) // _BLOCK, []).append(i)
        out: list[bytes] = [b""] * len(plaintexts)
        if short:
            for i, sealed in zip(
                short, self._short_many(prefix, [plaintexts[i] for i in short]), strict=True
            ):
                out[i] = sealed
        for nblocks, indexes in long.items():
            group = [plaintexts[i] for i in indexes]
            for i, sealed in zip(indexes, self._long_many(prefix, group, nblocks), strict=True):
                out[i] = sealed
        return out

    def decrypt(self, data: bytes, *associated_data: bytes) -> bytes:
        """Reveal a value from :meth:`encrypt`; raises ValueError unless key and AD both match."""
        if len(data) < _BLOCK:
            raise ValueError("SIV input is shorter than the 16-byte tag")
        prefix = self._prefixes.get(associated_data) or self._prefix(associated_data)
        tag = bytes(data[:_BLOCK])
        plaintext = self._ctr_xor(tag, data[_BLOCK:])
        if not hmac.compare_digest(self._s2v(prefix, plaintext), tag):
            raise ValueError("SIV authentication failed")
        return plaintext

    # --- internals ---------------------------------------------------------------------------

    def _prefix(self, associated_data: tuple[bytes, ...]) -> _Prefix:
        """Run S2V over the AD once; the result is a pure function of (key, AD tuple).

        Caching it is therefore safe: it holds no per-message state and is never mutated, and
        two threads racing to fill the same entry compute identical values.
        """
        if len(associated_data) > _MAX_AD:
            raise ValueError(f"AES-SIV accepts at most {_MAX_AD} associated data components")
        k1, k2 = self._subkeys

        def cmac(msg: bytes) -> int:
            mac = CMAC.new(self._cbc_key, msg=bytes(msg), ciphermod=AES)
            return int.from_bytes(mac.digest())

        d = cmac(_ZERO_BLOCK)
        for component in associated_data:
            d = _dbl(d) ^ cmac(component)
        dd = _dbl(d) ^ k1
        # len(P) = n < 16: pad(P) = P || 0x80 || 0...; a complete block, so CMAC uses K1'.
        short = tuple((0x80 << (8 * (15 - n))) ^ dd for n in range(_BLOCK))
        # len(P) >= 16: D is XORed into the last 16 bytes of P. With no padding (p = 0) the last
        # block is complete (K1'); otherwise T is padded with 0x80 0... and uses K2'.
        long = (
            d ^ k1,
            *((d << (8 * p)) ^ (0x80 << (8 * (p - 1))) ^ k2 for p in range(1, _BLOCK)),
        )
        prefix = _Prefix(short, long, dd.to_bytes(_BLOCK))
        if len(self._prefixes) < _MAX_CACHED_AD:
            self._prefixes[associated_data] = prefix
        return prefix

    def _s2v(self, prefix: _Prefix, plaintext: bytes) -> bytes:
        """S2V's last step: V = CMAC(T) with all AD-dependent terms taken from ``prefix``."""
        n = len(plaintext)
        if n < _BLOCK:
            block = (int.from_bytes(plaintext) << (8 * (_BLOCK - n))) ^ prefix.short[n]
            return self._mac(block.to_bytes(_BLOCK))
        pad = -n % _BLOCK
        msg = (int.from_bytes(plaintext) << (8 * pad)) ^ prefix.long[pad]
        return self._cbc_mac(msg, (n + pad) // _BLOCK)

    def _short_many(self, prefix: _Prefix, plaintexts: Sequence[bytes]) -> list[bytes]:
        """Values of 0-15 bytes: the CMAC input is one block, and so is the keystream.

        ``buf`` holds ``pad(P)`` of every value; XORed with ``dd`` it is every CMAC input, and
        XORed with the keystream its first n bytes of each block are the ciphertext (the pad
        bytes that follow are dropped).
        """
        count = len(plaintexts)
        size = count * _BLOCK
        buf = int.from_bytes(b"".join([p + _PAD80[len(p)] for p in plaintexts]))
        tags = self._mac((buf ^ int.from_bytes(prefix.dd * count)).to_bytes(size))
        q = int.from_bytes(tags) & int.from_bytes(_Q_MASK_BLOCK * count)
        cipher = (buf ^ int.from_bytes(self._ctr(q.to_bytes(size)))).to_bytes(size)
        return [
            tags[at : at + _BLOCK] + cipher[at : at + len(p)]
            for at, p in zip(range(0, size, _BLOCK), plaintexts, strict=True)
        ]

    def _long_many(self, prefix: _Prefix, plaintexts: Sequence[bytes], nblocks: int) -> list[bytes]:
        """Values of ``nblocks`` blocks (16 bytes or more): CBC-MAC and CTR in lockstep.

        Column j is block j of every value, back to back. CBC-MAC is ``X_j = E(X_{j-1} ^ M_j)``
        per value, so one ECB call per column advances every value at once; the counter blocks
        of column j are every value's Q plus j (an SIV-derived Q has bits 63 and 31 clear, so
        adding a small j never carries from one block into the next).
        """
        count = len(plaintexts)
        size = count * _BLOCK
        width = nblocks * _BLOCK
        long = prefix.long
        pads = [-len(p) % _BLOCK for p in plaintexts]
        msgs = [
            ((int.from_bytes(p) << (8 * pad)) ^ long[pad]).to_bytes(width)
            for p, pad in zip(plaintexts, pads, strict=True)
        ]
        state = self._mac(b"".join([m[:_BLOCK] for m in msgs]))
        for at in range(_BLOCK, width, _BLOCK):
            column = int.from_bytes(b"".join([m[at : at + _BLOCK] for m in msgs]))
            state = self._mac((int.from_bytes(state) ^ column).to_bytes(size))
        tags = state
        q = int.from_bytes(tags) & int.from_bytes(_Q_MASK_BLOCK * count)
        ones = int.from_bytes(_ONE_BLOCK * count)
        columns = [self._ctr((q + j * ones).to_bytes(size)) for j in range(nblocks)]
        out = []
        for at, p, pad in zip(range(0, size, _BLOCK), plaintexts, pads, strict=True):
            stream = int.from_bytes(b"".join([column[at : at + _BLOCK] for column in columns]))
            out.append(tags[at : at + _BLOCK] + ((stream >> (8 * pad)) ^ int.from_bytes(p)).to_bytes(len(p)))
        return out

    def _cbc_mac(self, msg: int, nblocks: int) -> bytes:
        """CBC-MAC (zero IV) of ``msg`` in one C call, via a reused per-thread CBC object.

        Creating a CBC cipher per value costs more than the whole SIV budget, and chaining
        ECB calls costs one call per block. A CBC object continues from its last ciphertext
        block, so we remember that block (it is the previous MAC) and XOR it into our first
        block, which cancels it and makes the object compute a zero-IV CBC-MAC again.

        The slot is cleared while in use: if anything interrupts the call between the C update
        and storing the new chaining value, the next call builds a fresh object instead of
        trusting a chaining value that may be stale.
        """
        local: Any = self._local
        slot: tuple[Any, int] | None = getattr(local, "cbc", None)
        local.cbc = None
        if slot is None:
            cbc: Any = AES.new(self._cbc_key, AES.MODE_CBC, iv=_ZERO_BLOCK)
            chain = 0
        else:
            cbc, chain = slot
        out: bytes = cbc.encrypt((msg ^ (chain << (128 * (nblocks - 1)))).to_bytes(16 * nblocks))
        tag = out[-_BLOCK:]
        local.cbc = (cbc, int.from_bytes(tag))
        return tag

    def _ctr_xor(self, tag: bytes, data: bytes) -> bytes:
        """AES-CTR under the second key half, starting at Q derived from the tag."""
        n = len(data)
        if not n:
            return b""
        nblocks = (n + _BLOCK - 1) // _BLOCK
        q = int.from_bytes(tag) & _Q_MASK
        stream = self._ctr(q.to_bytes(_BLOCK) if nblocks == 1 else _counter_blocks(q, nblocks))
        # Keep the first n keystream bytes: drop the unused tail of the last block.
        keystream = int.from_bytes(stream) >> (8 * (nblocks * _BLOCK - n))
        return (keystream ^ int.from_bytes(data)).to_bytes(n)
