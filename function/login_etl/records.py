"""Parsing and validating one SQS message body into a ``Login``, in plain Python.

Every problem becomes ``RecordRejectedError(reason, detail)`` with a stable reason code from
``constants.Reason``; the detail names the field, never its value. Nothing is trimmed or coerced:
what is stored is what was sent, or the record is rejected.

Validation also refuses what PostgreSQL would refuse predictably (a NUL or a lone surrogate in a
stored text field), so the store's bisection only ever hunts for the unpredictable.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from itertools import repeat
from operator import contains, itemgetter
from typing import Any, Final, NamedTuple, NoReturn, TypeGuard, cast

from .constants import (
    MAX_DEVICE_ID_BYTES,
    MAX_DEVICE_TYPE_CHARS,
    MAX_IP_BYTES,
    MAX_LOCALE_CHARS,
    MAX_USER_ID_CHARS,
    Reason,
)
from .errors import RecordRejectedError
from .versions import InvalidVersionError, encode_app_version, known_app_versions

__all__ = ["Login", "parse_body", "parse_login", "parse_logins", "validate"]

_REQUIRED: Final = ("user_id", "device_type", "ip", "device_id", "app_version")
# UTF-8 spends at most 4 bytes a character, so a string this short cannot exceed the byte limit.
_DEVICE_ID_SAFE_CHARS: Final = MAX_DEVICE_ID_BYTES // 4
# Exactly the strings ipaddress.IPv4Address accepts: four ASCII-decimal octets 0-255, no leading
# zeros. ``[0-9]``, not ``\d``, which also matches non-ASCII digits. Anything else (IPv6, or
# something invalid) goes through ipaddress itself.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_QUAD: Final = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_IPV4_REGEX: Final = re.compile(_QUAD)
_IPV4: Final = _IPV4_REGEX.fullmatch
# The lines of dotted quads at the start of a column of ips joined by newlines (``_not_quads``).
_QUAD_LINES: Final = re.compile(rf"(?:{_QUAD}\n)*").match


# Builds a NamedTuple without its Python-level __new__ frame: validate runs once a record.
_new_login: Final = tuple.__new__


class Login(NamedTuple):
    """A validated login, still in plaintext; masking happens in ``batch``."""

    user_id: str
    device_type: str
    ip: str
    device_id: str
    locale: str | None
    app_version: int


def _reject(reason: Reason, detail: str) -> RecordRejectedError:
    return RecordRejectedError(reason.value, detail)


def _loads(text: str) -> Any:
    """``json.loads``, except that an integer longer than Python's conversion limit (4300 digits)
    is valid JSON too: it is read as a ``Decimal`` (a number, so a required field holding one is
    still ``bad_type``). The slower hook runs only after the fast parse failed.

    Raises ``ValueError`` for invalid JSON and ``RecursionError`` for nesting deeper than the
    interpreter's stack.
    """
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text, parse_int=Decimal)


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Unwrap an SNS notification (no raw delivery) and/or an EventBridge event."""
    if obj.get("Type") == "Notification" and "Message" in obj:
        message = obj["Message"]
        if not isinstance(message, str):
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not a string")
        try:
            obj = _loads(message)
        except (ValueError, RecursionError):
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not JSON") from None
        if not isinstance(obj, dict):
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not a JSON object")
    if "detail-type" in obj:
        detail = obj.get("detail")
        if not isinstance(detail, dict):
            raise _reject(Reason.BAD_ENVELOPE, "EventBridge detail is not an object")
        obj = detail
    return obj


#: JSON's own names for what json.loads can return besides an object (not Python's: "NoneType").
_JSON_TYPE_NAMES: Final = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def parse_body(body: object) -> dict[str, Any]:
    """JSON-decode a message body and unwrap any envelope, giving the login object."""
    if not isinstance(body, str):
        raise _reject(Reason.NOT_JSON, "body is missing or not a string")
    try:
        obj = _loads(body)
    except (ValueError, RecursionError):
        raise _reject(Reason.NOT_JSON, "body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise _reject(
            Reason.NOT_OBJECT, f"body is a JSON {_JSON_TYPE_NAMES.get(type(obj), 'value')}, not an object"
        )
    return _unwrap(obj)


def _check_unicode(name: str, value: str) -> None:
    # JSON can carry lone surrogates ("\ud800"): Python accepts them, UTF-8 (and Postgres) cannot.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _reject(Reason.BAD_TYPE, f"{name} is not valid Unicode text") from None


def _check_ip(ip: str) -> None:
    # ipaddress accepts IPv6 zone ids ("fe80::1%eth0"); the contract does not.
    if len(ip) > MAX_IP_BYTES or "%" in ip or ip != ip.strip():
        raise _reject(Reason.BAD_IP, "ip is not an IPv4 or IPv6 address")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise _reject(Reason.BAD_IP, "ip is not an IPv4 or IPv6 address") from None


def _required_error(get: Any) -> NoReturn:
    """Raise the precise error for the first required field that is absent, empty or not a string.

    Called only when some required field is one of those, so it always raises.
    """
    for name in _REQUIRED:
        value = get(name)
        if value is None or value == "":
            raise _reject(Reason.MISSING_FIELD, name)
        if not isinstance(value, str):
            raise _reject(Reason.BAD_TYPE, f"{name} must be a string")
    raise AssertionError("unreachable: every required field is a non-empty string")


def validate(obj: Mapping[str, Any]) -> Login:
    """Check a login object against the contract; unknown keys are ignored and never stored.

    The checks run in a fixed order, so a record with several problems always gets the same
    reason: required fields (in ``_REQUIRED`` order), locale's type, lengths, storable text (no
    lone surrogate, and no NUL in the fields stored as text), ip, then app_version. Each step
    tests the common case in one expression and only on failure walks the fields one by one to
    name the culprit, so a valid record pays for one pass (``make bench`` times it).
    """
    get = obj.get
    user_id = get("user_id")
    device_type = get("device_type")
    ip = get("ip")
    device_id = get("device_id")
    app_version = get("app_version")
    if not (
        isinstance(user_id, str)
        and user_id
        and isinstance(device_type, str)
        and device_type
        and isinstance(ip, str)
        and ip
        and isinstance(device_id, str)
        and device_id
        and isinstance(app_version, str)
        and app_version
    ):
        _required_error(get)
    locale = get("locale")
    if locale == "":
        locale = None
    elif locale is not None and not isinstance(locale, str):
        raise _reject(Reason.BAD_TYPE, "locale must be a string or null")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise _reject(Reason.TOO_LONG, f"user_id exceeds {MAX_USER_ID_CHARS} characters")
    if len(device_type) > MAX_DEVICE_TYPE_CHARS:
        raise _reject(Reason.TOO_LONG, f"device_type exceeds {MAX_DEVICE_TYPE_CHARS} characters")
    if locale is not None and len(locale) > MAX_LOCALE_CHARS:
        raise _reject(Reason.TOO_LONG, f"locale exceeds {MAX_LOCALE_CHARS} characters")
    if not (
        user_id.isascii()
        and device_type.isascii()
        and device_id.isascii()
        and (locale is None or locale.isascii())
    ):
        for name, value in (
            ("user_id", user_id),
            ("device_type", device_type),
            ("device_id", device_id),
            ("locale", locale),
        ):
            if value is not None:
                _check_unicode(name, value)
    # device_id may hold NUL: it is masked, never stored as text. The other three may not.
    if "\x00" in user_id or "\x00" in device_type or (locale is not None and "\x00" in locale):
        stored = (("user_id", user_id), ("device_type", device_type), ("locale", locale or ""))
        name = next(n for n, v in stored if "\x00" in v)
        raise _reject(Reason.BAD_TYPE, f"{name} contains NUL (U+0000), which PostgreSQL cannot store")
    if len(device_id) > _DEVICE_ID_SAFE_CHARS and len(device_id.encode()) > MAX_DEVICE_ID_BYTES:
        raise _reject(Reason.TOO_LONG, f"device_id exceeds {MAX_DEVICE_ID_BYTES} UTF-8 bytes")
    # A plain dotted quad (what ipaddress accepts as IPv4) skips ipaddress's object construction.
    if _IPV4(ip) is None:
        _check_ip(ip)
    try:
        version = encode_app_version(app_version)
    except InvalidVersionError:
        raise _reject(Reason.BAD_APP_VERSION, "app_version is not MAJOR[.MINOR[.PATCH]]") from None
    return _new_login(Login, (user_id, device_type, ip, device_id, locale, version))


def parse_login(body: object) -> Login:
    """``validate(parse_body(body))``: the whole per-record check."""
    return validate(parse_body(body))


# The joined parse: bodies go into one JSON array text, separated by a newline, a comma and a
# newline. A JSON string cannot hold a raw newline, so no separator can end up inside a string.
_SEPARATOR: Final = "\n,\n"


def _joinable(body: object) -> TypeGuard[str]:
    """A body whose place in the joined array is provably its own (see ``_parse_joined``)."""
    return isinstance(body, str) and body[:1] == "{" and "[" not in body


# The first character of a string (IndexError for an empty one).
_FIRST: Final = itemgetter(0)


def _all_joinable(bodies: Sequence[object]) -> TypeGuard[Sequence[str]]:
    """``all(map(_joinable, bodies))`` in a few C calls (the usual batch: a third of the cost of
    calling ``_joinable`` a body): ``str.join`` refuses anything but strings, and an empty body
    has no first character."""
    texts = cast("Sequence[str]", bodies)  # checked here: join raises TypeError otherwise
    try:
        return "[" not in "".join(texts) and set(map(_FIRST, texts)) == {"{"}
    except (TypeError, IndexError):
        return False


def _parse_joined(bodies: Sequence[str]) -> list[Any] | None:
    """Every body's value from one ``json.loads`` call, or None when that cannot be trusted.

    Exactly ``json.loads(body)`` per body, when it returns a list: every separator is outside
    strings (strict JSON has no raw newline in a string); it is not inside an object, since there
    it would have to be followed by a key and is followed by a body's ``{``; and not inside an
    array other than the outer one, since no body contains ``[``. So every separator is at top
    level, each body holds whole elements, and with one element per body each body is exactly
    one JSON value, parsed as it would be alone. Any failure (a bad body, nesting one level too
    deep, an integer too long) returns None and the caller parses body by body.
    """
    try:
        values = json.loads("[" + _SEPARATOR.join(bodies) + "]")
    except Exception:  # noqa: BLE001 - whatever it is, each body is parsed alone instead
        return None
    return values if len(values) == len(bodies) else None


def _login_of(obj: Any) -> Login | Exception:
    try:
        return validate(_unwrap(obj))
    except Exception as err:  # noqa: BLE001 - the record's own outcome; the caller sorts it out
        return err


def _login_of_body(body: object) -> Login | Exception:
    try:
        return parse_login(body)
    except Exception as err:  # noqa: BLE001 - the record's own outcome; the caller sorts it out
        return err


# How many decoded bodies ``_fast_chunk`` checks at once: big enough that its few dozen C calls a
# chunk cost nothing a record, small enough that one bad record sends few neighbours the slow way.
_CHUNK: Final = 512
# ``_fast_chunk`` costs about 4 µs a chunk whatever its size, and saves about 0.4 µs a record:
# a batch smaller than this (SQS's default batch is 10) is faster record by record.
_FAST_MIN: Final = 16
_LOCALE_TYPES: Final = frozenset({str, type(None)})


def _fast_chunk(objs: list[Any]) -> list[Login | Exception] | None:
    """``[_login_of(obj) for obj in objs]``, with each check of ``validate`` run once over a
    column of the chunk in C (``str.join``, ``map``, ``max``, one regex), or None when any check
    fails for any record: then the caller validates the chunk record by record.

    Per-record Python was most of the cost of a valid batch; here a record costs a few C-level
    steps a field. It accepts only what ``validate`` accepts and builds the same ``Login``: it
    refuses an envelope, a non-string or empty required field, a locale that is neither a string
    nor null, a length over a limit, a lone surrogate, a NUL where ``validate`` refuses one. Two
    checks are per record instead, because a valid batch fails them for no fault of its own: an
    ip that is not a dotted quad (an IPv6 address goes through ``ipaddress``), and an app_version
    not memoised yet. Only those records go through ``_login_of``.
    """
    get: Callable[[dict[str, Any], str], Any] = dict.get  # Any: the checks below give the types
    try:  # dict.get refuses a non-dict and str.join a non-string: types, at C speed
        if any(map(contains, objs, repeat("detail-type"))) or "Notification" in map(
            get, objs, repeat("Type")
        ):
            return None
        user_ids = list(map(get, objs, repeat("user_id")))
        device_types = list(map(get, objs, repeat("device_type")))
        ips = list(map(get, objs, repeat("ip")))
        device_ids = list(map(get, objs, repeat("device_id")))
        app_versions = list(map(get, objs, repeat("app_version")))
        locales = list(map(get, objs, repeat("locale")))
        user_text = "".join(user_ids)
        type_text = "".join(device_types)
        ip_text = "\n".join(ips)
        device_text = "".join(device_ids)
        "".join(app_versions)
    except TypeError:
        return None
    if not (all(user_ids) and all(device_types) and all(ips) and all(device_ids)):
        return None
    if not _LOCALE_TYPES.issuperset(map(type, locales)):
        return None
    if "" in locales:
        locales = [locale or None for locale in locales]
    locale_text = "".join(filter(None, locales))
    if (
        max(map(len, user_ids)) > MAX_USER_ID_CHARS
        or max(map(len, device_types)) > MAX_DEVICE_TYPE_CHARS
        or max(map(len, filter(None, locales)), default=0) > MAX_LOCALE_CHARS
        or "\x00" in user_text
        or "\x00" in type_text
        or "\x00" in locale_text
    ):
        return None
    texts = (user_text, type_text, device_text, locale_text)
    # A lone surrogate in any value makes the joined text fail to encode, as it fails alone.
    if not all(map(str.isascii, texts)) and not _encodes("".join(texts)):
        return None
    device_bytes = map(len, device_ids if device_text.isascii() else map(str.encode, device_ids))
    if max(device_bytes) > MAX_DEVICE_ID_BYTES:
        return None
    versions = known_app_versions(app_versions)
    logins: list[Login | Exception] = list(
        map(
            _new_login,
            repeat(Login),
            zip(user_ids, device_types, ips, device_ids, locales, versions, strict=True),
        )
    )
    odd = _not_quads(ips, ip_text)
    if None in versions:
        odd.update(i for i, version in enumerate(versions) if version is None)
    for i in odd:
        logins[i] = _login_of(objs[i])
    return logins


def _not_quads(ips: list[str], ip_text: str) -> set[int]:
    """The places of the ips that are not dotted quads, from ``ip_text``, the ips joined by
    newlines: one regex match runs over the lines of quads up to the next other line, so a chunk
    costs one match plus one a line that is not a quad (an IPv6 address is valid, and common)."""
    if ip_text.count("\n") != len(ips) - 1:  # a newline inside an ip: lines are not records
        return {i for i, match in enumerate(map(_IPV4, ips)) if match is None}
    odd: set[int] = set()
    line = 0
    start = 0
    while True:
        end = _QUAD_LINES(ip_text, start).end()  # type: ignore[union-attr] # ``*`` always matches
        line += ip_text.count("\n", start, end)
        if _IPV4_REGEX.fullmatch(ip_text, end) is not None:
            return odd
        odd.add(line)
        start = ip_text.find("\n", end) + 1
        if start == 0:
            return odd
        line += 1


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _logins_of(objs: list[Any]) -> list[Login | Exception]:
    """``_login_of`` of every decoded body, a chunk at a time through ``_fast_chunk``; a chunk it
    refuses is validated record by record, so a bad record costs its chunk the slow path and gets
    exactly the reason ``validate`` gives it. Should the fast path ever raise (a bug), its chunk
    goes the slow way too, where each record's error is its own."""
    if len(objs) < _FAST_MIN:
        return list(map(_login_of, objs))
    results: list[Login | Exception] = []
    for start in range(0, len(objs), _CHUNK):
        chunk = objs[start : start + _CHUNK]
        try:
            fast = _fast_chunk(chunk)
        except Exception:  # noqa: BLE001 - never worse than the per-record path
            fast = None
        results += map(_login_of, chunk) if fast is None else fast
    return results


def parse_logins(bodies: Sequence[object]) -> list[Login | Exception]:
    """``parse_login`` of every body, in order: its ``Login``, or what it raised (a
    ``RecordRejectedError``, or for a bug any other exception, which must not fail its neighbours).

    The bodies that are plain JSON objects are decoded by one ``json.loads`` over all of them,
    which saves most of the per-call cost of decoding, and validated a chunk at a time
    (``_logins_of``); the others, and all of them when the joined parse fails, go through
    ``parse_login`` one by one. The result is the same either way.
    """
    joined = bodies if _all_joinable(bodies) else [body for body in bodies if _joinable(body)]
    values = _parse_joined(joined) if joined else None
    if values is None:
        return [_login_of_body(body) for body in bodies]
    if len(joined) == len(bodies):
        return _logins_of(values)
    parsed = iter(_logins_of(values))
    return [next(parsed) if _joinable(body) else _login_of_body(body) for body in bodies]
