"""The PII-leak guard: raw ips and device_ids, keys and passwords must never escape.

``tests/conftest.py`` arms it (autouse) for every test. While armed it
learns the secrets of the test's own data, by observation only:

- every record body the handler's ``process_batch`` sees (in this process), and every body the
  test registers with ``watch_body`` (bodies sent to drainer subprocesses);
- key material, however it arrives and however wrong the configuration: both halves of every
  ``PII_KEYS`` entry and the active id, unless they are valid key ids (so a key written the wrong
  way round, ``key:id``, is watched too); every string anywhere in a key secret
  (``KeyRing.from_secret``) that is not a valid id; and every key a ``KeyRing`` is built with, in
  each encoding it could be printed in (base64 and base64url, padded or not, and hex);
- passwords: from every ``DATABASE_URL`` parsed (even one too mangled to parse: whatever sits
  between ``user:`` and the last ``@``) and from every RDS secret (``rds_conn_params``);

and looks for them, at teardown, in:

- the handler's JSON log lines and the EMF metric blobs (pytest's captured stdout/stderr/log);
- the message of every package exception constructed during the test (``LoginEtlError``), caught
  by the test or not;
- any text the test hands to ``check_text`` (a drainer subprocess's output);
- every column of ``user_logins_rejected`` (and the masked columns of ``user_logins``) of each
  test database, read just before the database is dropped.

Short values are not watched: a 3-character device_id would "appear" inside base64 by chance.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Shorter values are too likely to occur by chance (base64url, uuids, timestamps).
MIN_WATCHED = 7
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
#: A valid PII key id (``pii._KEY_ID``): at most 32 characters, so never a whole key. Ids are
#: printed on purpose (masked values start with one), so they are not watched.
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def key_encodings(key: bytes) -> set[str]:
    """Every way a key's bytes could be printed: base64 and base64url, padded or not, and hex."""
    std = base64.b64encode(key).decode()
    url = base64.urlsafe_b64encode(key).decode()
    return {std, std.rstrip("="), url, url.rstrip("="), key.hex()}


def url_password(url: str) -> str | None:
    """The password of a postgres URL, found even when the URL is too mangled to parse (an
    unescaped ``@``, ``/`` or ``#`` in the password): whatever is between ``user:`` and the last
    ``@`` of the part before any ``?``."""
    rest = url.partition("://")[2].partition("?")[0]
    userinfo, at, _ = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.partition(":")[2] or None


def _worth_watching(value: str) -> bool:
    if len(value) < MIN_WATCHED:
        return False
    # A value made only of base64url characters could occur inside a ciphertext by chance.
    return not (_BASE64URL.fullmatch(value) and len(value) < 12)


def pii_of_body(body: object) -> set[str]:
    """The ip and device_id strings of a body (through SNS/EventBridge envelopes), if any."""
    found: set[str] = set()

    def visit(obj: Any, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except (ValueError, RecursionError):
                return
        if not isinstance(obj, dict):
            return
        for name in ("ip", "device_id"):
            value = obj.get(name)
            if isinstance(value, str):
                found.add(value)
        for name in ("Message", "detail"):
            if name in obj:
                visit(obj[name], depth + 1)

    visit(body, 0)
    return found


#: Where a value printed into text would end: whitespace, quotes, brackets, separators.
_TOKEN_SPLIT = re.compile(r"[\s\"'(),{}\[\]=;<>|]+")


def _contains_any(text: str, values: set[str]) -> bool:
    """Substring search; for a soak's 100,000 values, a token lookup instead (same verdict for any
    value printed as a whole word, which is how a log or a row would carry it)."""
    if len(values) * len(text) <= 50_000_000:
        return any(value in text for value in values)
    return any(token in values for token in _TOKEN_SPLIT.split(text))


@dataclass
class Leak:
    where: str
    what: str


@dataclass
class PiiGuard:
    """What this test must never show, and where it looked."""

    pii: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    texts: list[tuple[str, str]] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)
    db_scans: int = 0

    # --- learning -------------------------------------------------------------------------------
    def watch(self, values: Iterable[str]) -> None:
        self.pii.update(v for v in values if isinstance(v, str) and _worth_watching(v))

    def watch_body(self, body: object) -> None:
        self.watch(pii_of_body(body))

    def watch_secret(self, value: str | None) -> None:
        if value and len(value) >= 8:
            self.secrets.add(value)

    def watch_key_part(self, value: object) -> None:
        """Half of a key-ring entry, or an active id: watched unless it is a valid key id."""
        if isinstance(value, str) and not _KEY_ID.fullmatch(value.strip()):
            self.watch_secret(value.strip())

    def watch_key(self, key: bytes) -> None:
        for text in key_encodings(key):
            self.watch_secret(text)

    # --- looking --------------------------------------------------------------------------------
    def check_text(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def _scan(self, where: str, text: str) -> None:
        if not text:
            return
        if _contains_any(text, self.pii):
            self.leaks.append(Leak(where, "a raw ip/device_id of the test data"))
        if _contains_any(text, self.secrets):
            self.leaks.append(Leak(where, "key material or a password"))

    def scan_database(self, query: Callable[[str], list[list[Any]]], name: str) -> None:
        """Every rejected row as text, and the masked columns; plaintext there is a leak."""
        self.db_scans += 1
        for table, columns in (
            ("user_logins_rejected", "t::text"),
            ("user_logins", "masked_ip || ' ' || masked_device_id"),
        ):
            try:
                rows = query(f"SELECT {columns} FROM {table} t")
            except Exception:  # noqa: BLE001, S112 - no such table (unmigrated database): nothing to leak
                continue
            self._scan(f"{name}.{table}", "\n".join(str(r[0]) for r in rows))

    def verdict(self) -> list[Leak]:
        for where, text in self.texts:
            self._scan(where, text)
        return self.leaks


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - a formatting failure is not ours to report here
            self.lines.append(str(record.msg))


def arm(monkeypatch: pytest.MonkeyPatch, node: pytest.Item) -> Iterator[PiiGuard]:
    """Install the observers, yield the guard, then judge. Used by the autouse fixture."""
    from login_etl import batch, config, errors, handler, pii, secrets

    from support import pg

    guard = PiiGuard()

    real_process = batch.process_batch

    def observed_process(records: Any, ring: Any, store: Any) -> Any:
        for record in records:
            guard.watch_body(record.get("body") if isinstance(record, dict) else None)
        return real_process(records, ring, store)

    monkeypatch.setattr(batch, "process_batch", observed_process)
    monkeypatch.setattr(handler, "process_batch", observed_process)

    real_from_spec = pii.KeyRing.from_spec.__func__  # type: ignore[attr-defined]

    def observed_from_spec(cls: type, spec: str, active_id: str | None = None) -> Any:
        for item in spec.split(","):
            key_id, _, encoded = item.partition(":")
            guard.watch_key_part(key_id)
            guard.watch_key_part(encoded)
        guard.watch_key_part(active_id)
        return real_from_spec(cls, spec, active_id)

    monkeypatch.setattr(pii.KeyRing, "from_spec", classmethod(observed_from_spec))

    real_from_secret = pii.KeyRing.from_secret.__func__  # type: ignore[attr-defined]

    def every_string(value: object) -> Iterator[object]:
        """Every string anywhere in a secret's JSON, names included: a misshapen secret may hold
        its keys anywhere."""
        if isinstance(value, dict):
            for name, item in value.items():
                yield name
                yield from every_string(item)
        elif isinstance(value, list):
            for item in value:
                yield from every_string(item)
        else:
            yield value

    def observed_from_secret(cls: type, secret: object, active_id: str | None = None) -> Any:
        for text in every_string(secret):
            guard.watch_key_part(text)
        guard.watch_key_part(active_id)
        return real_from_secret(cls, secret, active_id)

    monkeypatch.setattr(pii.KeyRing, "from_secret", classmethod(observed_from_secret))

    real_ring_init = pii.KeyRing.__init__

    def observed_ring_init(self: Any, keys: Any, active_id: str | None = None) -> None:
        for key in keys.values() if isinstance(keys, dict) else ():
            if isinstance(key, bytes):
                guard.watch_key(key)
        real_ring_init(self, keys, active_id)

    monkeypatch.setattr(pii.KeyRing, "__init__", observed_ring_init)

    real_parse_url = config.parse_database_url

    def observed_parse_url(url: str) -> Any:
        guard.watch_secret(url_password(url))
        params = real_parse_url(url)
        guard.watch_secret(params.password)
        return params

    monkeypatch.setattr(config, "parse_database_url", observed_parse_url)

    real_rds = secrets.rds_conn_params

    def observed_rds(secret: Any) -> Any:
        if isinstance(secret, dict) and isinstance(secret.get("password"), str):
            guard.watch_secret(secret["password"])
        return real_rds(secret)

    monkeypatch.setattr(secrets, "rds_conn_params", observed_rds)

    messages: list[str] = []
    real_init = errors.LoginEtlError.__init__

    def observed_init(self: BaseException, *args: Any, **kwargs: Any) -> None:
        messages.append(" ".join(str(a) for a in args))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(errors.LoginEtlError, "__init__", observed_init)

    real_drop = pg.TestDB.drop

    def observed_drop(self: Any) -> None:
        try:
            guard.scan_database(self.query, self.name)
        finally:
            real_drop(self)

    monkeypatch.setattr(pg.TestDB, "drop", observed_drop)

    captured = _ListHandler()
    captured.setFormatter(handler.logger.registered_formatter)
    handler.logger.addHandler(captured)
    try:
        yield guard
    finally:
        logging.getLogger(handler.logger.name).removeHandler(captured)
    guard.check_text("handler log lines", "\n".join(captured.lines))
    guard.check_text("package exception messages", "\n".join(messages))
    for when, key, content in getattr(node, "_report_sections", []):
        guard.check_text(f"captured {key} ({when})", content)
    leaks = guard.verdict()
    if leaks:
        places = "; ".join(f"{leak.what} in {leak.where}" for leak in leaks)
        pytest.fail(f"PII guard: {places}", pytrace=False)
