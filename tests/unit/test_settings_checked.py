"""Every setting is checked when it is read: generated values, every variable, every surface.

A value is either accepted, and then usable as read (in range, finite, exactly the number
written), or refused with the variable's one fixed line, which therefore can never carry the
value. ``DATABASE_URL``'s libpq parameters are honoured or refused by name; TLS asked for is never
dropped (the stricter of ``DB_SSLMODE`` and the URL's ``sslmode`` wins).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from login_etl import config
from login_etl import constants as c
from login_etl.config import ConnParams, Settings, aws_region, parse_database_url, region_of_arn
from login_etl.errors import ConfigError
from login_etl_cli.main import main

#: ``main`` exports Powertools settings for the handler; undo them after each test.
pytestmark = pytest.mark.usefixtures("restore_environ")

KEYS = "k1:" + "A" * 86
URL = "postgresql://app@db.internal/logins"

# (variable, its one refusal line, lowest accepted, highest accepted, attribute path of the value)
NUMERIC = [
    (
        "DB_CONNECT_TIMEOUT",
        "DB_CONNECT_TIMEOUT must be a number of seconds from 0.1 to 900",
        0.1,
        900,
        lambda s: s.db.connect_timeout_s,
    ),
    (
        "DB_STATEMENT_TIMEOUT_MS",
        "DB_STATEMENT_TIMEOUT_MS must be a whole number of milliseconds from 0 to 2147483647",
        0,
        2_147_483_647,
        lambda s: s.db.statement_timeout_ms,
    ),
    (
        "SECRETS_MAX_AGE",
        "SECRETS_MAX_AGE must be a whole number of seconds from 0 to 86400",
        0,
        86_400,
        lambda s: s.secrets_max_age_s,
    ),
]
NASTY = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e3", "1E400", "-1", "-0.5", "0x10", "1_000", "\u0661\u0662",
    "\uff11", "5s", "5 0", "2147483648", "99999999999999999999", "1.5.2", ".5", "5.", "+5", "true",
]  # fmt: skip


def _settings(**extra: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": URL, "PII_KEYS": KEYS, **extra})


@pytest.mark.parametrize(("name", "line", "low", "high", "read"), NUMERIC, ids=[n[0] for n in NUMERIC])
@settings(max_examples=150, deadline=None)
@given(
    raw=st.one_of(st.sampled_from(NASTY), st.text(max_size=12), st.floats().map(repr), st.integers().map(str))
)
def test_a_numeric_setting_is_usable_as_read_or_refused_in_one_fixed_line(
    name: str, line: str, low: float, high: float, read: object, raw: str
) -> None:
    try:
        value = read(_settings(**{name: raw}))  # type: ignore[operator]
    except ConfigError as exc:
        assert str(exc) == line  # one fixed line per variable: it names it, and holds no value
        return
    if raw.strip() == "":
        return  # unset: the default
    assert math.isfinite(value) and low <= value <= high
    assert value == float(raw.strip())


@pytest.mark.parametrize(("name", "line", "low", "high", "read"), NUMERIC, ids=[n[0] for n in NUMERIC])
def test_the_bounds_are_accepted_and_nan_infinity_and_one_past_are_not(
    name: str, line: str, low: float, high: float, read: object
) -> None:
    for ok in (str(low), str(high)):
        assert read(_settings(**{name: ok})) == float(ok)  # type: ignore[operator]
    past = str(high + 1)
    for bad in ("nan", "inf", "-inf", past, "-1"):
        with pytest.raises(ConfigError) as caught:
            _settings(**{name: bad})
        assert str(caught.value) == line


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"DB_STATEMENT_TIMEOUT_MS": "nan"}, NUMERIC[1][1]),
        ({"DB_CONNECT_TIMEOUT": "inf"}, NUMERIC[0][1]),
        ({"DB_STATEMENT_TIMEOUT_MS": "2147483648"}, NUMERIC[1][1]),
        ({"PII_KEYS": "k1:c2hvcnQ"}, "PII key 'k1' is 5 bytes; AES-SIV keys here are 32 or 64 random bytes"),
        (
            {"PII_ACTIVE_KEY_ID": "not an id"},
            "PII_ACTIVE_KEY_ID must be a key id: 1-32 characters of A-Z a-z 0-9 _ . -",
        ),
        ({"DATABASE_URL": URL + "?connect_timeout=3"}, None),
    ],
)
@pytest.mark.parametrize("argv", [["migrate"], ["drain", "--queue-url", "http://127.0.0.1:1/q"], ["rejects"]])
def test_the_cli_exits_2_with_one_line_naming_the_setting(
    env: dict[str, str],
    line: str | None,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in c.CONFIG_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("PII_KEYS", KEYS)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if argv[0] != "drain" and "PII" in next(iter(env)):
        return  # migrate and rejects (without --replay) need no key ring
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    if line is not None:
        assert err == f"error: {line}\n"
    for value in env.values():
        assert len(value) < 6 or value not in err


# --- DATABASE_URL: libpq parameters ---------------------------------------------------------------
def test_honoured_libpq_parameters_are_used(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    params = parse_database_url(
        f"postgresql://db.internal/?user=app&password=p%26w&dbname=logins&port=6543"
        f"&sslmode=verify-full&sslrootcert={ca}"
    )
    assert params == ConnParams(
        user="app",
        password="p&w",
        host="db.internal",
        port=6543,
        database="logins",
        sslmode="verify-full",
        sslrootcert=str(ca),
    )
    s = _settings(DATABASE_URL=f"postgresql://app@h/db?sslmode=verify-full&sslrootcert={ca}")
    assert (s.db.sslmode, s.db.sslrootcert) == ("verify-full", str(ca))


SUPPORTED = {"host", "port", "dbname", "user", "password", "sslmode", "sslrootcert"}
UNSUPPORTED = sorted(config._LIBPQ_PARAMS - SUPPORTED)


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_a_libpq_parameter_we_do_not_honour_is_refused_by_name(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(f"{URL}?{name}=1")
    assert str(caught.value) == (
        f"DATABASE_URL parameter {name!r} is not supported (supported: host, port, dbname, user, "
        "password, sslmode, sslrootcert; DB_CONNECT_TIMEOUT for connect_timeout)"
    )


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda n: n not in SUPPORTED and n not in UNSUPPORTED))
def test_a_query_name_that_is_no_libpq_parameter_is_refused_without_being_echoed(name: str) -> None:
    from urllib.parse import quote

    with pytest.raises(ConfigError) as caught:
        parse_database_url(f"{URL}?{quote(name, safe='')}=1")
    assert str(caught.value) == "DATABASE_URL has a query parameter that is not a libpq parameter"


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (URL + "?sslmode=prefer", "DATABASE_URL's sslmode=prefer may fall back to plaintext; use one of "
         "disable, require, verify-ca, verify-full"),
        (URL + "?sslmode=allow", "DATABASE_URL's sslmode=allow may fall back to plaintext; use one of "
         "disable, require, verify-ca, verify-full"),
        (URL + "?sslmode=bogus",
         "DATABASE_URL's sslmode must be one of disable, require, verify-ca, verify-full"),
        ("postgresql://app@h:5432/db?port=6543", "DATABASE_URL gives two different ports"),
        ("postgresql://app@h/db?port=0", "DATABASE_URL's port must be a number from 1 to 65535"),
        ("postgresql://app@h:0/db", "DATABASE_URL's port must be a number from 1 to 65535"),
        ("postgresql://app@h/db?port=70000", "DATABASE_URL's port must be a number from 1 to 65535"),
        ("postgresql://app@h/db?host=other", "DATABASE_URL gives two different hosts"),
        ("postgresql://app@h/db?host=/tmp", "DATABASE_URL gives two different hosts"),
        ("postgresql://app@/db?host=a,b", "DATABASE_URL names several hosts; login-etl connects to one"),
        ("postgresql://app@h/db?user=other", "DATABASE_URL gives two different users"),
        ("postgresql://app@h/db?dbname=other", "DATABASE_URL gives two different database names"),
        ("postgresql://app:a@h/db?password=b", "DATABASE_URL gives two different passwords"),
        ("postgresql://app@h/db?sslmode=require&sslmode=disable",
         "DATABASE_URL parameter 'sslmode' is given twice"),
        ("postgresql://app@h/db#x",
         "DATABASE_URL must not have a #fragment (is a '#' in the password not %23?)"),
    ],
)  # fmt: skip
def test_an_ambiguous_or_unsafe_url_is_refused_clearly(url: str, line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(DATABASE_URL=url)
    assert str(caught.value) == line


@pytest.mark.parametrize("url_mode", [None, *c.SSL_MODES])
@pytest.mark.parametrize("env_mode", [None, *c.SSL_MODES])
def test_the_stricter_sslmode_wins(env_mode: str | None, url_mode: str | None) -> None:
    url = URL + (f"?sslmode={url_mode}" if url_mode else "")
    extra = {"DATABASE_URL": url, **({"DB_SSLMODE": env_mode.upper()} if env_mode else {})}
    got = _settings(**extra).db.sslmode
    asked = [m for m in (env_mode, url_mode) if m]
    assert got == (max(asked, key=c.SSL_MODES.index) if asked else "disable")
    assert c.SSL_MODES.index(got) >= max((c.SSL_MODES.index(m) for m in asked), default=0)


def test_two_different_root_certificates_are_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pem", tmp_path / "b.pem"
    with pytest.raises(ConfigError) as caught:
        _settings(DATABASE_URL=f"{URL}?sslrootcert={a}", DB_SSLROOTCERT=str(b))
    assert str(caught.value) == "DB_SSLROOTCERT and DATABASE_URL's sslrootcert disagree; set one"


# --- AWS region ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arn", "env", "region"),
    [
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbC", {}, "eu-west-1"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db", {"AWS_REGION": "us-east-2"}, "eu-west-1"),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:1:secret:x", {}, "us-gov-west-1"),
        ("arn:aws-cn:secretsmanager:cn-north-1:1:secret:x", {}, "cn-north-1"),
        ("db-secret-name", {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-west-2"}, "ap-south-1"),
        ("db-secret-name", {"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ("db-secret-name", {}, None),
        (None, {"AWS_REGION": "sa-east-1"}, "sa-east-1"),
    ],
)
def test_the_region_is_the_arns_then_aws_region_then_aws_default_region(
    arn: str | None, env: dict[str, str], region: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert aws_region(arn) == region
    if arn and arn.startswith("arn:"):
        assert region_of_arn(arn) == region
