"""The CLI never prints a traceback for user input: a bad value is exit 2 and one ``error:`` line.

Three generators over the class, not one case per symptom:
- a table of bad values for every option of every command, found by introspecting the real
  parser (an option added later without a checked type fails ``test_every_option_value_is_checked``);
- Hypothesis over random text for each of those options;
- a table of inputs that only fail after parsing (file contents, standard input, the AWS
  environment, the configuration), run as a user runs the console script.
Each asserts exit 2, exactly one ``error:`` line, no traceback, and no secret of the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import new_key_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from login_etl_cli import argtypes
from login_etl_cli import main as cli
from login_etl_cli.commands import migrate as migrate_command

LOGIN_ETL = str(Path(sys.executable).with_name("login-etl"))
PASSWORD = "pw-never-echoed-5f3a"
KEY_SPEC = new_key_spec("k1")
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing here ever leaves the machine
Q = f"{NOWHERE}/123456789012/q"

# Bad values for each checked type of option value.
BAD: dict[Callable[[str], Any], list[str]] = {
    argtypes.batch_size: ["", "0", "-1", "10001", "1.5", "nan", "ten", "1e3"],
    argtypes.seconds: ["", "-0.1", "301", "nan", "inf", "-inf", "1e999", "soon"],
    argtypes.ratio: ["", "-0.01", "1.01", "nan", "inf", "half"],
    argtypes.synthetic: ["", "-1", "1000001", "1.5", "many", "9" * 5000],
    argtypes.limit: ["", "0", "-1", "10000001", "all"],
    argtypes.rows: ["", "-1", "1001", "some"],
    argtypes.seed: ["", "seed", "1.5", str(2**63 + 5), "9" * 5000],
    argtypes.port: ["", "-1", "65536", "http"],
    argtypes.queue_url: [
        "",
        "q",
        "localhost:4566/1/q",
        "sqs.us-east-1.amazonaws.com/1/q",
        "ftp://host/1/q",
        "http://",
        "http://host",
        "http://host:99999/1/q",
        "http://host/1/q\n",
        "http://host/1/\x1b[31mq",
    ],
    argtypes.endpoint_url: [
        "",
        "localhost:4566",
        "127.0.0.1:4566",
        "ftp://host",
        "http://",
        "http://host:port",
        "http://host\u2028",
        "http:// host",
    ],
    argtypes.region: ["", "us east 1", "-us-east-1", "x" * 64, "us-east-1\n", "eu_west_1"],
    argtypes.reason: ["", "bad-ip", "BAD_IP", "bad ip", "valid"],
    argtypes.role_name: ["", "Admin", "1role", "role-name", "x" * 64, "role;drop"],
    argtypes.days: ["", "0", "367", "-1", "week", "9" * 5000],
}
# Options whose value is free-form by nature, checked where it is used (the post-parse table).
FREE_FORM = {"--file", "--show"}  # a path; a message id (any text is a valid lookup)
# A valid command line for each command, to which one bad option is appended.
BASE = {
    "demo": ["demo"],
    "drain": ["drain", "--queue-url", Q],
    "send": ["send", "--queue-url", Q, "--synthetic", "1"],
    "reveal": ["reveal", "k1:x"],
    "migrate": ["migrate"],
    "rejects": ["rejects"],
    "status": ["status"],
    "sqs-local": ["sqs-local"],
}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def valued_options() -> list[tuple[str, str, Any]]:
    """(command, option, type) for every option of every command that takes a value."""
    return [
        (name, action.option_strings[-1], action.type)
        for name, sub in subcommands().items()
        for action in sub._actions
        if action.option_strings and action.nargs != 0 and action.dest != "help"
    ]


CHECKED = [(c, o, t) for c, o, t in valued_options() if o not in FREE_FORM]
CASES = [(c, o, v) for c, o, t in CHECKED for v in BAD.get(t, [])]


@pytest.fixture(autouse=True)
def user_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets a user has exported, which no message may echo; AWS pointed at nowhere."""
    monkeypatch.setenv("DATABASE_URL", f"postgresql://etl:{PASSWORD}@127.0.0.1:9/logins")
    monkeypatch.setenv("PII_KEYS", KEY_SPEC)
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    monkeypatch.delenv("LOGIN_ETL_DEBUG", raising=False)


def assert_one_error_line(stderr: str, stdout: str = "") -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    for secret in (PASSWORD, KEY_SPEC, KEY_SPEC.split(":", 1)[1]):
        assert secret not in stderr + stdout
    return errors[0]


def parse_fails(argv: list[str]) -> str:
    """Parse as main() does; return the one error line, asserting exit 2 and no traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2, err.getvalue()
    return assert_one_error_line(err.getvalue())


def test_every_option_value_is_checked() -> None:
    """A new option that takes a value must get a checked type (and bad values above)."""
    unchecked = [(c, o) for c, o, t in CHECKED if t not in BAD]
    assert unchecked == []
    assert {c for c, _, _ in CHECKED} >= {
        "demo",
        "drain",
        "send",
        "migrate",
        "rejects",
        "status",
        "sqs-local",
    }


@pytest.mark.parametrize(("command", "option", "value"), CASES)
def test_a_bad_option_value_is_exit_2_and_one_line_naming_the_option(
    command: str, option: str, value: str
) -> None:
    line = parse_fails([*BASE[command], f"{option}={value}"])

    assert f"argument {option}" in line
    assert line.isprintable(), "a value echoed in a message is escaped, never raw"


@pytest.mark.parametrize("command", sorted(BASE))
def test_the_base_command_lines_are_valid(command: str) -> None:
    """So that each case above fails because of its one bad value, and nothing else."""
    cli.build_parser().parse_args(BASE[command])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(CHECKED),
    value=st.one_of(
        st.text(st.characters(codec=None), max_size=40),
        st.floats().map(str),
        st.integers().map(str),
        st.sampled_from(["http://h/1/q", "https://sqs.eu-west-1.amazonaws.com/1/q", "us-east-1", "not_json"]),
    ),
)
def test_any_option_value_is_accepted_or_refused_in_one_line(case: tuple[str, str, Any], value: str) -> None:
    command, option, _ = case
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            cli.build_parser().parse_args([*BASE[command], f"{option}={value}"])
    except SystemExit as exit_info:
        assert exit_info.code == 2
        assert f"argument {option}" in assert_one_error_line(err.getvalue())


# --- inputs that fail after parsing, as a user runs the console script ------------------------
def run(*args: str, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [LOGIN_ETL, *args], env=env, input=stdin, capture_output=True, timeout=60, check=False
    )


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"postgresql://etl:{PASSWORD}@127.0.0.1:9/logins",
        "PII_KEYS": KEY_SPEC,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": NOWHERE,
    }


def _files(tmp_path: Path) -> dict[str, Path]:
    latin1 = tmp_path / "latin1.ndjson"
    latin1.write_bytes(b'{"user_id": "u1"}\n{"user_id": "J\xfcrgen"}\n')
    utf16 = tmp_path / "utf16.ndjson"
    utf16.write_text('{"user_id": "u1"}\n', "utf-16")
    directory = tmp_path / "a-directory"
    directory.mkdir()
    return {"latin1": latin1, "utf16": utf16, "directory": directory, "missing": tmp_path / "missing.ndjson"}


POST_PARSE = [
    # (id, argv, environment changes, stdin, what the error line must say)
    ("send --file latin-1", ["send", "--queue-url", Q, "--file", "{latin1}"], {}, None, "not UTF-8"),
    ("send --file utf-16", ["send", "--queue-url", Q, "--file", "{utf16}"], {}, None, "not UTF-8"),
    ("send --file directory", ["send", "--queue-url", Q, "--file", "{directory}"], {}, None, "cannot read"),
    ("send --file missing", ["send", "--queue-url", Q, "--file", "{missing}"], {}, None, "cannot read"),
    ("demo --file latin-1", ["demo", "--file", "{latin1}"], {}, None, "not UTF-8"),
    ("reveal - latin-1 stdin", ["reveal", "-"], {}, b"k1:\xff\xfe\n", "not UTF-8"),
    (
        "AWS_DEFAULT_REGION with a space",
        ["send", "--queue-url", Q, "--synthetic", "1"],
        {"AWS_DEFAULT_REGION": "us east 1"},
        None,
        "region",
    ),
    (
        "AWS_ENDPOINT_URL without a scheme",
        ["send", "--queue-url", Q, "--synthetic", "1"],
        {"AWS_ENDPOINT_URL": "localhost:4566"},
        None,
        "endpoint URL",
    ),
    (
        "DATABASE_URL not postgresql",
        ["migrate"],
        {"DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"},
        None,
        "DATABASE_URL",
    ),
    ("PII_KEYS garbage", ["reveal", "k1:x"], {"PII_KEYS": f"k1:{PASSWORD}"}, None, "PII"),
    ("PII_KEYS garbage, drain", ["drain", "--queue-url", Q], {"PII_KEYS": f"{PASSWORD}"}, None, "PII"),
    ("rejects --queue-url without --replay", ["rejects", "--queue-url", Q], {}, None, "--replay"),
    ("rejects --replay without a queue", ["rejects", "--replay"], {}, None, "--queue-url"),
    ("drain big batch, no window", ["drain", "--queue-url", Q, "--batch-size", "100"], {}, None, "--window"),
]


@pytest.mark.parametrize(
    ("argv", "changes", "stdin", "says"), [p[1:] for p in POST_PARSE], ids=[p[0] for p in POST_PARSE]
)
def test_an_input_that_fails_after_parsing_is_exit_2_and_one_line(
    argv: list[str],
    changes: dict[str, str],
    stdin: bytes | None,
    says: str,
    user_env: dict[str, str],
    tmp_path: Path,
) -> None:
    files = {name: str(path) for name, path in _files(tmp_path).items()}
    result = run(*(arg.format(**files) for arg in argv), env={**user_env, **changes}, stdin=stdin)

    stderr, stdout = result.stderr.decode("utf-8", "replace"), result.stdout.decode("utf-8", "replace")
    assert result.returncode == 2, stderr
    line = assert_one_error_line(stderr, stdout)
    assert line.startswith("error: ") and says in line
    assert "J\ufffdrgen" not in line and "Jürgen" not in line, "the file's content is not echoed"


def test_an_unexpected_exception_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last resort: a bug is one line (a traceback can quote a value), never silent."""

    def boom(_args: Any) -> int:
        raise OverflowError(f"value {PASSWORD} too large")

    monkeypatch.setattr(migrate_command, "run", boom)
    assert cli.main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: unexpected OverflowError: this is a bug in login-etl; "
        "rerun with LOGIN_ETL_DEBUG=1 for the traceback\n"
    )
    monkeypatch.setenv("LOGIN_ETL_DEBUG", "1")
    with pytest.raises(OverflowError):
        cli.main(["migrate"])
