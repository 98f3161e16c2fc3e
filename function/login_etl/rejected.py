"""Rejected bodies, sealed with AES-SIV under the key ring and bound to their message id.

The associated data is ``body``, a NUL, then the message id (validated printable ASCII, so the
NUL cannot be forged from inside an id). A body ciphertext copied onto another reject row then
fails to authenticate there: a row cannot be made to replay someone else's body. Rows written
before this binding used ``body`` alone; ``open_body`` still reads them, so no stored row became
unreadable (their swap protection is what it always was).
"""

from __future__ import annotations

from .constants import AD_BODY
from .errors import RevealError
from .pii import KeyRing

__all__ = ["body_ad", "open_body", "seal_body"]


def body_ad(message_id: str) -> bytes:
    """The associated data of the body of message ``message_id``."""
    return AD_BODY + b"\x00" + message_id.encode("utf-8")


def seal_body(ring: KeyRing, body: str, message_id: str) -> str:
    """Encrypt ``body`` under the active key, bound to ``message_id``."""
    return ring.mask(body, body_ad(message_id))


def open_body(ring: KeyRing, sealed: str, message_id: str) -> str:
    """The plaintext body of row ``message_id``; ``RevealError`` if it is not that row's body."""
    try:
        return ring.unmask(sealed, body_ad(message_id))
    except RevealError:
        # A row from before the message-id binding (associated data "body" alone).
        return ring.unmask(sealed, AD_BODY)
