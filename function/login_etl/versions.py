"""app_version text -> an integer that sorts like the version.

``MAJOR[.MINOR[.PATCH]]``, optional leading ``v``, optional ``-prerelease`` / ``+build`` suffix
(dropped). Each part is 0-999, so ``major*1_000_000 + minor*1_000 + patch`` is order-preserving
and fits a Postgres ``integer``. A two-part version is MAJOR.MINOR: "0.96" -> 96000, and "2.0"
and "2.00" both give 2000000 (parts are numbers, not strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["InvalidVersionError", "encode_app_version", "known_app_versions"]

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣", which int() would accept.
_VERSION: Final = re.compile(
    r"v?([0-9]{1,3})(?:\.([0-9]{1,3})(?:\.([0-9]{1,3}))?)?"
    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)


# A fleet reports a few hundred distinct versions at most, so valid ones are memoised; the bound
# keeps a stream of distinct (hostile) versions from growing memory. Invalid text is never cached.
_CACHE_LIMIT: Final = 4096
_cache: dict[str, int] = {}


class InvalidVersionError(ValueError):
    """The text is not MAJOR[.MINOR[.PATCH]] with parts 0-999."""


def encode_app_version(text: str) -> int:
    """Encode ``text``; raise ``InvalidVersionError`` (never echoing the text) when it is not a version."""
    found = _cache.get(text)
    if found is not None:
        return found
    match = _VERSION.fullmatch(text)
    if match is None:
        raise InvalidVersionError("app_version is not MAJOR[.MINOR[.PATCH]] with parts 0-999")
    major, minor, patch = match.groups()
    value = int(major) * 1_000_000 + int(minor or 0) * 1_000 + int(patch or 0)
    if len(_cache) < _CACHE_LIMIT:
        _cache[text] = value
    return value


def known_app_versions(texts: Iterable[str]) -> list[int | None]:
    """Each text's code from the memo alone (one C-level ``dict.get`` a text, no Python frame), or
    None where it is not memoised yet: the caller sends those through ``encode_app_version``,
    which decides whether they are valid and memoises them. A batch of a fleet's few versions
    then costs a lookup a record."""
    return list(map(_cache.get, texts))
