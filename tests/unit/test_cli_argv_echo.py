"""A mistyped command line never echoes what it holds: argparse's own errors quote argv.

Users paste connection strings and keys onto the command line by mistake (``--database-url``
is a common flag elsewhere; ``login-etl`` reads ``DATABASE_URL`` only). argparse's stock errors
for an unknown option, a stray value, an unknown command and an ambiguous abbreviation quote the
offending text, password included, onto stderr (a terminal, a CI log). A table over every way
argparse has to quote argv, for every command: exit 2, one ``error:`` line, the option's name
when there is one, never its value.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from login_etl_cli.main import main
from unit.test_cli_inputs import BASE  # a valid command line for each command

SECRET = "pw-never-echoed-7c1e"
URL = f"postgresql://etl:{SECRET}@127.0.0.1:9/logins"
# (id, what is appended to a valid command line, the option name the error must show or None)
SHAPES = [
    ("unknown option, value apart", ["--database-url", URL], "--database-url"),
    ("unknown option, value joined", [f"--database-url={URL}"], "--database-url"),
    ("unknown short option, value joined", [f"-p{SECRET}"], "-p..."),
    ("stray value", [URL], None),
    ("stray option-like value", [f"--{SECRET.upper()}"], None),
    ("stray key", [f"k1:{SECRET}"], None),
]
#: ``reveal`` takes any number of values: a stray one is a value to reveal, not an error.
CASES = [
    (command, extra, option)
    for command in sorted(BASE)
    for name, extra, option in SHAPES
    if not (command == "reveal" and name.startswith("stray"))
]


def _stderr_of(argv: list[str]) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2, err.getvalue()
    return err.getvalue()


def _assert_one_clean_line(stderr: str) -> str:
    assert SECRET not in stderr, stderr
    assert "Traceback" not in stderr
    [line] = [x for x in stderr.splitlines() if "error:" in x]
    return line


@pytest.mark.parametrize(("command", "extra", "option"), CASES)
def test_unrecognized_arguments_are_named_never_quoted(
    command: str, extra: list[str], option: str | None
) -> None:
    line = _assert_one_clean_line(_stderr_of([*BASE[command], *extra]))
    assert "unrecognized arguments" in line
    if option is not None:
        assert option in line


@pytest.mark.parametrize("word", [URL, f"k1:{SECRET}", SECRET])
def test_an_unknown_command_is_not_quoted(word: str) -> None:
    line = _assert_one_clean_line(_stderr_of([word]))
    assert "argument COMMAND: invalid choice (choose from 'demo'" in line


def test_an_ambiguous_abbreviation_names_the_abbreviation_not_its_value() -> None:
    """``--re`` could be --reason, --replay or --region of ``rejects``."""
    line = _assert_one_clean_line(_stderr_of(["rejects", f"--re={SECRET}"]))
    assert "ambiguous option: --re could match" in line


def test_a_typo_still_gets_a_useful_message() -> None:
    line = _assert_one_clean_line(_stderr_of(["status", "--jsn"]))
    assert line.endswith("unrecognized arguments: --jsn (values are not shown)")
