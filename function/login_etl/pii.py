"""PII masking: deterministic, reversible, tamper-evident AES-SIV under a key ring.

Stored form: ``<key_id>:<base64url, no padding, of tag || ciphertext>``. The associated data is
the source field name (``ip`` or ``device_id``), which keeps the two fields' domains apart: the
same string masked as an ip and as a device_id gives unrelated outputs.

Deterministic on purpose: equal inputs under the same key give equal outputs, so duplicates stay
visible in SQL. The trade-off is that rotating the active key changes the masked value of the
same input; old values stay readable because every key of the ring is kept for reveal.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Final

from .constants import AD_DEVICE_ID, AD_IP, PII_KEY_SIZES
from .errors import KeyRingError, RevealError
from .siv import SivCipher

__all__ = ["FIELD_ADS", "MASKED_FORM", "KeyRing", "b64url", "b64url_many", "is_masked_form", "unb64url"]

#: Associated data by field name; reveal tries each, since SIV authenticates the field.
FIELD_ADS: Final[Mapping[str, bytes]] = {"ip": AD_IP, "device_id": AD_DEVICE_ID}

_KEY_ID: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: What ``mask`` produces: a key id, a colon, and base64url (no padding) of the 16-byte SIV tag
#: and the ciphertext, so at least 22 characters, and never a length of 4n+1.
MASKED_FORM: Final = "<key id>:<base64url>"
_MASKED: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}:(?P<payload>[A-Za-z0-9_-]{22,})")
# Zero bytes that round a length up to a multiple of 3, indexed by length % 3.
_TO_THREE: Final = (b"", b"\x00\x00", b"\x00")


def b64url(data: bytes) -> str:
    """Base64url without padding: compact, and safe in CSV, URLs and COPY text without escaping."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_masked_form(value: str) -> bool:
    """Whether ``value`` has the shape of a masked value (``MASKED_FORM``), whatever its key."""
    match = _MASKED.fullmatch(value)
    return match is not None and len(match["payload"]) % 4 != 1


def unb64url(text: str) -> bytes:
    """Inverse of ``b64url``; raises ``ValueError`` on anything that is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def b64url_many(items: Sequence[bytes]) -> list[str]:
    """``[b64url(x) for x in items]`` with one base64 call for the whole list.

    Each item is padded with zero bytes to a multiple of 3, so every item starts on a 4-character
    boundary of the joint encoding; unpadded base64 of L bytes is the first ceil(4L/3) characters
    of the encoding of those bytes followed by zeros, so slicing gives each item's own encoding.
    """
    text = base64.urlsafe_b64encode(b"".join([x + _TO_THREE[len(x) % 3] for x in items])).decode("ascii")
    out = []
    at = 0
    for x in items:
        n = len(x)
        out.append(text[at : at + (4 * n + 2) // 3])
        at += (n + 2) // 3 * 4
    return out


def _check_id(key_id: object, position: int, where: str) -> str:
    """The entry's id, checked before anything else so that only a valid id is ever printed.

    A valid id is at most 32 characters and a 32- or 64-byte key is at least 43 in base64, so a
    printed id can never be a key. An entry written the wrong way round (key first) is named by
    its position only, so its key never reaches a message, a log line or an exception.
    """
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise KeyRingError(
            f"{where} entry {position}: the key id must be 1-32 characters of A-Z a-z 0-9 _ . - "
            "(is it written key first?)"
        )
    return key_id


def _decode_key(name: str, text: str) -> bytes:
    """Accept standard or url-safe base64, padded or not; the error says ``name``, never the key."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except binascii.Error:
        raise KeyRingError(f"{name} is not valid base64") from None
    if len(raw) not in PII_KEY_SIZES:
        raise KeyRingError(f"{name} is {len(raw)} bytes; AES-SIV keys here are 32 or 64 random bytes")
    return raw


def _active_id(active: object) -> str | None:
    if active is None or active == "":
        return None
    if not isinstance(active, str) or not _KEY_ID.fullmatch(active):
        raise KeyRingError("the active PII key id is not a key id (1-32 characters of A-Z a-z 0-9 _ . -)")
    return active


class KeyRing:
    """Several keys by id, one active for masking; every key stays usable for reveal."""

    __slots__ = ("_active_prefix", "_ciphers", "active_id")

    def __init__(self, keys: Mapping[str, bytes], active_id: str | None = None) -> None:
        if not keys:
            raise KeyRingError("the PII key ring is empty")
        for position, (key_id, key) in enumerate(keys.items(), start=1):
            _check_id(key_id, position, "the PII key ring")
            if len(key) not in PII_KEY_SIZES:
                raise KeyRingError(f"PII key {key_id!r} must be 32 or 64 bytes")
        active = _active_id(active_id) or next(iter(keys))
        if active not in keys:
            raise KeyRingError(f"the active PII key id {active!r} is not in the key ring")
        self._ciphers = {key_id: SivCipher(key) for key_id, key in keys.items()}
        self.active_id = active
        self._active_prefix = active + ":"

    def __repr__(self) -> str:
        return f"KeyRing(ids={sorted(self._ciphers)}, active={self.active_id!r})"

    @classmethod
    def from_spec(cls, spec: str, active_id: str | None = None) -> KeyRing:
        """Parse ``PII_KEYS``: ``id:base64key[,id:base64key...]``."""
        keys: dict[str, bytes] = {}
        for position, item in enumerate(spec.split(","), start=1):
            key_id, sep, encoded = item.strip().partition(":")
            if not sep or not key_id or not encoded:
                raise KeyRingError("PII_KEYS must look like id:base64key[,id:base64key...]")
            _check_id(key_id, position, "PII_KEYS")
            if key_id in keys:
                raise KeyRingError(f"PII key id {key_id!r} appears twice")
            keys[key_id] = _decode_key(f"PII key {key_id!r}", encoded)
        return cls(keys, active_id)

    @classmethod
    def from_secret(cls, secret: object, active_id: str | None = None) -> KeyRing:
        """Parse the Secrets Manager form ``{"active": "k2", "keys": {"k1": "<base64>", ...}}``."""
        if not isinstance(secret, Mapping) or not isinstance(secret.get("keys"), Mapping):
            raise KeyRingError('the PII key secret must be {"active": id, "keys": {id: base64}}')
        raw_keys = secret["keys"]
        keys = {}
        where = "the PII key secret's keys"
        for position, (key_id, encoded) in enumerate(raw_keys.items(), start=1):
            _check_id(key_id, position, where)
            if not isinstance(encoded, str):
                raise KeyRingError(f"{where} entry {position}: the key is not a base64 string")
            keys[key_id] = _decode_key(f"PII key {key_id!r}", encoded)
        active = active_id or secret.get("active")
        if active is not None and not isinstance(active, str):
            raise KeyRingError('the PII key secret\'s "active" must be a key id')
        return cls(keys, active)

    def mask(self, value: str, ad: bytes) -> str:
        """Mask ``value`` under the active key, with ``ad`` (the field name) as associated data.

        ``surrogatepass`` keeps a rejected body with lone surrogates byte-exact for replay;
        validated fields never contain any.
        """
        return self._active_prefix + b64url(
            self._ciphers[self.active_id].encrypt(value.encode("utf-8", "surrogatepass"), ad)
        )

    def mask_many(self, values: Sequence[str], ad: bytes) -> list[str]:
        """``[mask(v, ad) for v in values]``, encrypted and encoded for the whole batch at once."""
        cipher = self._ciphers[self.active_id]
        sealed = cipher.encrypt_many([v.encode("utf-8", "surrogatepass") for v in values], ad)
        prefix = self._active_prefix
        return [prefix + text for text in b64url_many(sealed)]

    def unmask(self, masked: str, ad: bytes) -> str:
        """Recover the plaintext of one field; raise ``RevealError`` if it does not authenticate."""
        key_id, sep, payload = masked.partition(":")
        cipher = self._ciphers.get(key_id)
        if not sep or cipher is None:
            raise RevealError("the value's key id is not in the key ring")
        try:
            return cipher.decrypt(unb64url(payload), ad).decode("utf-8", "surrogatepass")
        except ValueError:
            raise RevealError("the value does not authenticate under its key") from None

    def reveal(self, masked: str) -> tuple[str, str]:
        """Recover ``(field, plaintext)`` trying each field's associated data in turn.

        A value not even of the masked form (a raw ip pasted by mistake, a truncated copy) says
        so, rather than "does not decrypt", which sends its reader looking for a missing key.
        """
        if not is_masked_form(masked):
            raise RevealError(f"not a masked value (expected {MASKED_FORM})")
        for field_name, ad in FIELD_ADS.items():
            try:
                return field_name, self.unmask(masked, ad)
            except RevealError:
                continue
        raise RevealError("the value does not decrypt as an ip or a device_id under the key ring")
