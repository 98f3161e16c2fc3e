"""Parsing and validating one SQS message body into a ``Login``, in plain Python.

Every problem becomes ``RecordRejectedError(reason, detail)`` with a stable reason code from
``constants.Reason``; the detail names the field, never its value. Nothing is trimmed or coerced:
what is stored is what was sent, or the record is rejected.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from .constants import (
    MAX_DEVICE_ID_BYTES,
    MAX_DEVICE_TYPE_CHARS,
    MAX_IP_BYTES,
    MAX_LOCALE_CHARS,
    MAX_USER_ID_CHARS,
    Reason,
)
from .errors import RecordRejectedError
from .versions import InvalidVersionError, encode_app_version

__all__ = ["Login", "parse_body", "parse_login", "validate"]

_REQUIRED: Final = ("user_id", "device_type", "ip", "device_id", "app_version")
_CHAR_LIMITS: Final = (
    ("user_id", MAX_USER_ID_CHARS),
    ("device_type", MAX_DEVICE_TYPE_CHARS),
    ("locale", MAX_LOCALE_CHARS),
)
# UTF-8 spends at most 4 bytes a character, so a string this short cannot exceed the byte limit.
_DEVICE_ID_SAFE_CHARS: Final = MAX_DEVICE_ID_BYTES // 4


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


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    """Unwrap an SNS notification (no raw delivery) and/or an EventBridge event."""
    if obj.get("Type") == "Notification" and "Message" in obj:
        message = obj["Message"]
        if not isinstance(message, str):
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not a string")
        try:
            obj = json.loads(message)
        except ValueError:
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not JSON") from None
        if not isinstance(obj, dict):
            raise _reject(Reason.BAD_ENVELOPE, "SNS Message is not a JSON object")
    if "detail-type" in obj:
        detail = obj.get("detail")
        if not isinstance(detail, dict):
            raise _reject(Reason.BAD_ENVELOPE, "EventBridge detail is not an object")
        obj = detail
    return obj


def parse_body(body: object) -> dict[str, Any]:
    """JSON-decode a message body and unwrap any envelope, giving the login object."""
    if not isinstance(body, str):
        raise _reject(Reason.NOT_JSON, "body is missing or not a string")
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        raise _reject(Reason.NOT_JSON, "body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise _reject(Reason.NOT_OBJECT, f"body is a JSON {type(obj).__name__}, not an object")
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


def validate(obj: Mapping[str, Any]) -> Login:
    """Check a login object against the contract; unknown keys are ignored and never stored."""
    get = obj.get
    for name in _REQUIRED:
        value = get(name)
        if value is None or value == "":
            raise _reject(Reason.MISSING_FIELD, name)
        if not isinstance(value, str):
            raise _reject(Reason.BAD_TYPE, f"{name} must be a string")
    locale = get("locale")
    if locale == "":
        locale = None
    elif locale is not None and not isinstance(locale, str):
        raise _reject(Reason.BAD_TYPE, "locale must be a string or null")
    login = Login(obj["user_id"], obj["device_type"], obj["ip"], obj["device_id"], locale, 0)
    for name, limit in _CHAR_LIMITS:
        value = getattr(login, name)
        if value is not None and len(value) > limit:
            raise _reject(Reason.TOO_LONG, f"{name} exceeds {limit} characters")
    for name in ("user_id", "device_type", "device_id", "locale"):
        value = getattr(login, name)
        if value is not None:
            _check_unicode(name, value)
    device_id = login.device_id
    if len(device_id) > _DEVICE_ID_SAFE_CHARS and len(device_id.encode()) > MAX_DEVICE_ID_BYTES:
        raise _reject(Reason.TOO_LONG, f"device_id exceeds {MAX_DEVICE_ID_BYTES} UTF-8 bytes")
    _check_ip(login.ip)
    try:
        version = encode_app_version(obj["app_version"])
    except InvalidVersionError:
        raise _reject(Reason.BAD_APP_VERSION, "app_version is not MAJOR[.MINOR[.PATCH]]") from None
    return login._replace(app_version=version)


def parse_login(body: object) -> Login:
    """``validate(parse_body(body))``: the whole per-record check."""
    return validate(parse_body(body))
