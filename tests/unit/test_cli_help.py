"""Every ``login-etl`` command has help with examples, and is documented in the README and docs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from login_etl_cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("demo", "drain", "send", "reveal", "migrate", "rejects", "status", "sqs-local")
Q = "http://127.0.0.1:9/123456789012/q"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def readme_cli_section() -> str:
    text = (REPO / "README.md").read_text("utf-8")
    start, end = text.index("<!-- cli:start -->"), text.index("<!-- cli:end -->")
    return text[start:end]


def test_the_commands_are_the_contracts() -> None:
    assert tuple(subcommands()) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_a_description_and_examples(name: str) -> None:
    sub = subcommands()[name]
    assert sub.description and len(sub.description) > 40
    assert sub.epilog and sub.epilog.startswith("examples:")
    assert f"login-etl {name}" in sub.epilog
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings} has no help"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme_and_the_docs(name: str) -> None:
    assert f"login-etl {name}" in readme_cli_section()
    assert f"## `login-etl {name}`" in (REPO / "docs" / "cli.md").read_text("utf-8")


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: login-etl" in capsys.readouterr().out


def test_drain_defaults_to_until_empty() -> None:
    parse = build_parser().parse_args
    assert parse(["drain", "--queue-url", Q]).forever is False
    assert parse(["drain", "--queue-url", Q, "--until-empty"]).forever is False
    assert parse(["drain", "--queue-url", Q, "--forever"]).forever is True


def test_drain_refuses_a_big_batch_without_a_window_as_lambda_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["drain", "--queue-url", Q, "--batch-size", "100"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --batch-size above 10 needs --window of at least 1 second, as on Lambda"
    )


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["send", "--queue-url", Q, "--synthetic", "5", "--invalid-ratio", "2"])
    assert exit_info.value.code == 2
