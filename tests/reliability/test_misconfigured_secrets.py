"""No key, password or URL with its password in any message, even when the configuration is wrong.

Hypothesis writes random keys in every encoding, misconfigured in every way we know of (written
key first, without an id, in PII_ACTIVE_KEY_ID, truncated, duplicated, in the secret the wrong
way round), and random passwords in URLs too mangled to parse. Each goes through every surface a
user sees: the configuration error itself, the Lambda's ``configuration error`` / ``startup
failed`` log line and the exception Lambda records (with its whole chain), and the CLI's stderr.

The autouse PII guard (support/pii_guard) learns each key and password as it is parsed and fails
the test if one shows anywhere; the assertions below check the same texts directly as well.
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from conftest import LogCapture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from login_etl import handler
from login_etl.config import Settings
from login_etl.errors import ConfigError, LoginEtlError
from login_etl.pii import KeyRing
from login_etl_cli.context import LocalContext
from login_etl_cli.main import main
from support.pg import TestDB
from support.pii_guard import PiiGuard, key_encodings

#: ``main`` exports Powertools settings for the handler; undo them after each test.
pytestmark = pytest.mark.usefixtures("restore_environ")

#: Nothing listens on port 1 of loopback: a URL that parses fails fast, never leaves the machine.
NOWHERE = "127.0.0.1:1"
KEY_IDS = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
ENCODINGS: list[Callable[[bytes], str]] = [
    lambda k: base64.b64encode(k).decode(),
    lambda k: base64.b64encode(k).decode().rstrip("="),
    lambda k: base64.urlsafe_b64encode(k).decode(),
    lambda k: base64.urlsafe_b64encode(k).decode().rstrip("="),
]


@st.composite
def keys(draw: st.DrawFn) -> str:
    raw = draw(st.binary(min_size=32, max_size=32) | st.binary(min_size=64, max_size=64))
    return draw(st.sampled_from(ENCODINGS))(raw)


def _good() -> str:
    return "good:" + base64.b64encode(bytes(range(64))).decode()


# Each: (key id, key text) -> the PII variables of a misconfigured deploy.
PII_MISTAKES: dict[str, Callable[[str, str], dict[str, str]]] = {
    "written key first": lambda kid, key: {"PII_KEYS": f"{key}:{kid}"},
    "second entry key first": lambda kid, key: {"PII_KEYS": f"{_good()},{key}:{kid}"},
    "no id": lambda kid, key: {"PII_KEYS": key},
    "= instead of :": lambda kid, key: {"PII_KEYS": f"{kid}={key}"},
    "truncated": lambda kid, key: {"PII_KEYS": f"{kid}:{key[:-6]}"},
    "trailing garbage": lambda kid, key: {"PII_KEYS": f"{kid}:{key}!?"},
    "id repeated": lambda kid, key: {"PII_KEYS": f"{kid}:{key},{kid}:{key}"},
    "key as the active id": lambda kid, key: {"PII_KEYS": _good(), "PII_ACTIVE_KEY_ID": key},
    "key as the id too": lambda kid, key: {"PII_KEYS": f"{key}:{key}"},
}


def _everything(exc: BaseException) -> str:
    """What Lambda and a log could show of an exception: message, repr, and the whole chain."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def _assert_absent(text: str, *secrets: str) -> None:
    for secret in secrets:
        for variant in {secret, secret.strip(), secret.rstrip("=")}:
            if len(variant) >= 8:
                assert variant not in text


def _lambda_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in ("DATABASE_URL", "DB_SECRET_ARN", "PII_KEYS", "PII_KEYS_SECRET_ARN", "PII_ACTIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app@{NOWHERE}/db")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler.reset()


SURFACE_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(max_examples=80, **SURFACE_SETTINGS)  # type: ignore[arg-type]
@given(kid=KEY_IDS, key=keys(), mistake=st.sampled_from(sorted(PII_MISTAKES)))
def test_a_misconfigured_key_ring_never_shows_its_key(
    kid: str,
    key: str,
    mistake: str,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = PII_MISTAKES[mistake](kid, key)
    logs.clear()
    with monkeypatch.context() as m:
        _lambda_env(m, env)
        try:
            with pytest.raises(ConfigError) as caught:
                handler.lambda_handler({"Records": []}, LocalContext())
        finally:
            handler.reset()
        # The CLI: reveal needs only the key ring; drain checks the whole configuration.
        codes = [main(["reveal", "good:AAAA"]), main(["drain", "--queue-url", f"http://{NOWHERE}/q"])]
    printed = capsys.readouterr()
    [line] = [x for x in logs.lines() if x["message"] == "configuration error"]
    assert line["error"] == str(caught.value)
    assert codes == [2, 2]
    assert printed.err.count("error: ") == 2 and "Traceback" not in printed.err
    text = "\n".join([_everything(caught.value), logs.text(), printed.out, printed.err])
    _assert_absent(text, key, *key_encodings(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))))


@pytest.mark.parametrize(
    "secret",
    [
        lambda kid, key: {"keys": {key: kid}},
        lambda kid, key: {"keys": {kid: key}, "active": key},
        lambda kid, key: {"keys": {kid: key[:-6]}},
        lambda kid, key: {"keys": {kid: key[:-2] + "!!"}},
        lambda kid, key: {"keys": [kid, key]},
        lambda kid, key: {kid: key},
    ],
    ids=["key first", "key as active", "truncated", "not base64", "a list", "no keys object"],
)
def test_a_misconfigured_key_secret_never_shows_its_key(
    secret: Callable[[str, str], dict[str, Any]],
    secrets_client: Any,
    db: TestDB,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    pii_guard: PiiGuard,
) -> None:
    key = base64.b64encode(bytes(range(100, 164))).decode()
    value = json.dumps(secret("k1", key))
    arn = secrets_client.create_secret(Name=f"pii-{abs(hash(value))}", SecretString=value)["ARN"]
    # A reachable database: the key secret is read at the batch, after the startup migration.
    _lambda_env(monkeypatch, {"DATABASE_URL": db.url, "PII_KEYS_SECRET_ARN": arn})
    try:
        with pytest.raises(ConfigError) as caught:
            handler.lambda_handler({"Records": []}, LocalContext())
    finally:
        handler.reset()
    [line] = [x for x in logs.lines() if x["message"] == "configuration error"]
    assert line["error"] == str(caught.value)
    _assert_absent(_everything(caught.value) + logs.text(), key, key[:-6], key[:-2])
    # The guard learnt the key (or what the secret holds of it), so it would have caught a leak too.
    assert any(learnt[:40] == key[:40] for learnt in pii_guard.secrets)


def test_the_guard_learns_a_key_written_the_wrong_way_round(pii_guard: PiiGuard) -> None:
    key = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    with pytest.raises(LoginEtlError):
        KeyRing.from_spec(f"{key}:k1")
    assert key in pii_guard.secrets
    leaky = PiiGuard(secrets=set(pii_guard.secrets))
    leaky.check_text("stderr", f"error: PII key {key!r} is not valid base64")
    assert leaky.verdict()


# --- passwords -------------------------------------------------------------------------------------
# Characters that break a URL when not percent-escaped are the interesting ones. The fixed ends
# keep a generated password from occurring by chance in a log line ("00000000" in an ARN).
passwords = st.text(alphabet="abcXYZ019@/#?:%&=+ !$'()*,;[]", min_size=4, max_size=20).map(
    lambda middle: f"Pw~{middle}~Q"
)
URL_SHAPES: list[Callable[[str], str]] = [
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/db",
    lambda pw: f"mysql://app:{pw}@{NOWHERE}/db",
    lambda pw: f"postgresql://app:{pw}@127.0.0.1:notaport/db",
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/db?sslmode=prefer",
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/db?application_name=x",
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/db?{pw}",
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/",
    lambda pw: f"postgresql://app:{pw}@{NOWHERE}/db?port=2&port=3",
]


@settings(max_examples=80, **SURFACE_SETTINGS)  # type: ignore[arg-type]
@given(pw=passwords, shape=st.sampled_from(range(len(URL_SHAPES))))
def test_a_mangled_database_url_never_shows_its_password(
    pw: str,
    shape: int,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogCapture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = URL_SHAPES[shape](pw)
    logs.clear()
    with monkeypatch.context() as m:
        _lambda_env(m, {"DATABASE_URL": url, "PII_KEYS": _good()})
        try:
            settings_ = Settings.from_env()
        except ConfigError as exc:
            failure: BaseException = exc
            codes = [main(["migrate"])]
        else:
            # It parsed: connect only if the host is loopback (a password with "/" or "?" in it
            # can turn the URL's host into anything), and never anywhere else.
            from login_etl.config import parse_database_url

            assert settings_.db.url == url
            if parse_database_url(url).host != NOWHERE.partition(":")[0]:
                return
            with pytest.raises(LoginEtlError) as caught:
                handler.lambda_handler({"Records": []}, LocalContext())
            failure = caught.value
            codes = [main(["migrate"])]
        finally:
            handler.reset()
    printed = capsys.readouterr()
    assert codes[0] in (1, 2) and "Traceback" not in printed.err
    _assert_absent("\n".join([_everything(failure), logs.text(), printed.out, printed.err]), pw, url)
