"""docs/cli.md opens with what each command needs; a command missing there is a reader's dead end."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from login_etl_cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def needs_table() -> str:
    text = (REPO / "docs" / "cli.md").read_text("utf-8")
    start = text.index("| command | needs |")
    return text[start : text.index("\n\n", start)]


def command_names() -> list[str]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


@pytest.mark.parametrize("name", command_names())
def test_every_command_says_what_it_needs(name: str) -> None:
    assert f"`{name}`" in needs_table()
