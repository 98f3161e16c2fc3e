"""The README is a front page whose every command works as printed, and the docs stand alone.

A newcomer copies commands from the README; a command nobody runs rots. So each command line in
the README is either run by a named test, checked by the real argument parser, or marked with
what it needs that CI lacks. The docs must stand alone in a clone: every relative link resolves
inside the repository, to a file and heading that exist.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from login_etl_cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
MAX_README_LINES = 200

MARKERS = ("# needs Docker", "# needs an AWS account", "# needs internet")
# Commands the README shows without a marker, and the test that runs each (file::function).
EXERCISED = {
    "make demo": "tests/e2e/test_cli.py::"
    "test_demo_on_the_exercise_data_inserts_99_rejects_1_and_leaves_the_queue_empty",
    "make test": ".ci/run",  # the gate itself; CI runs exactly it
    "make validate": "tests/integration/test_events_dir.py::"
    "test_make_validate_and_build_then_the_built_package_handles_every_event",
    "make build": "tests/integration/test_events_dir.py::"
    "test_make_validate_and_build_then_the_built_package_handles_every_event",
    "make events": "tests/integration/test_events_dir.py::"
    "test_generator_reproduces_the_committed_files_byte_for_byte",
    "make env-local": "tests/integration/test_events_dir.py::"
    "test_env_local_generates_and_prints_an_ephemeral_key",
    "make test-sam": "tests/sam/test_sam_local.py::test_sam_local_invoke_on_each_event_file",
    # The LocalStack tier runs both, as printed, against a host LocalStack.
    "make deploy-localstack": "tests/localstack/conftest.py::tier",
    "make send": "tests/localstack/test_localstack.py::test_exercise_data_lands_through_localstacks_poller",
}
# What the make target runs, so the test above really exercises it.
RECIPE_RUNS = {
    "make demo": "login-etl demo",
    "make events": "scripts/make_events.py",
    "make env-local": "scripts/make_events.py env-local",
    "make test-sam": "pytest tests/sam",
}


def readme() -> str:
    return README.read_text("utf-8")


def section(name: str) -> str:
    text = readme()
    start, end = text.index(f"<!-- {name}:start -->"), text.index(f"<!-- {name}:end -->")
    return text[start:end]


def command_lines(text: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_the_readme_is_a_front_page() -> None:
    lines = readme().splitlines()
    assert len(lines) < MAX_README_LINES
    headings = [line for line in lines if line.startswith("## ")]
    for expected in ("Quick start", "How it works", "Configuration", "Three ways to run it"):
        assert any(expected in heading for heading in headings), expected
    assert "## Read more" in headings


def test_the_readme_has_commands_in_every_section() -> None:
    assert len(command_lines(section("deploy"))) >= 15
    assert command_lines(section("quickstart"))
    assert command_lines(section("cli"))


@pytest.mark.parametrize(
    "line", [line for line in command_lines(readme()) if not line.startswith("login-etl")]
)
def test_readme_command_is_tested_or_marked(line: str) -> None:
    if any(marker in line for marker in MARKERS):
        return
    command = line.split("#", 1)[0].strip()
    assert command in EXERCISED, f"README runs {command!r}: test it, or mark what it needs"
    path, _, function = EXERCISED[command].partition("::")
    assert (ROOT / path).is_file()
    if function:
        assert f"def {function}(" in (ROOT / path).read_text("utf-8")
    if command in RECIPE_RUNS:
        dry_run = subprocess.run(
            ["make", "-n", command.split()[1]], cwd=ROOT, capture_output=True, text=True, check=True
        )
        assert RECIPE_RUNS[command] in dry_run.stdout


@pytest.mark.parametrize("line", [line for line in command_lines(readme()) if line.startswith("login-etl")])
def test_readme_login_etl_line_is_accepted_by_the_real_parser(line: str) -> None:
    """Every option printed in the README exists, with a value of the right type."""
    argv = shlex.split(line.split("#", 1)[0].replace("$Q", "http://127.0.0.1:1/123456789012/q"))
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exit_info:  # --version and --help exit, with 0
        assert exit_info.code == 0


def deploy_targets() -> list[str]:
    text = (ROOT / "mk" / "deploy.mk").read_text()
    return re.findall(r"^([a-z-]+):.*## ", text, flags=re.MULTILINE)


@pytest.mark.parametrize("target", deploy_targets())
def test_every_deploy_target_is_in_the_readme(target: str) -> None:
    assert f"make {target}" in section("deploy")


def test_logs_insights_query_in_the_docs_matches_the_make_target() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text("utf-8")
    query = re.search(r"```text\n(fields .*?)```", text, flags=re.DOTALL)
    assert query
    assert query[1].strip() in (ROOT / "mk" / "deploy.mk").read_text()
    assert 'filter message = "batch summary"' in query[1]


def anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def links() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text("utf-8")):
            if not re.match(r"[a-z]+:", target):
                found.append((str(doc.relative_to(ROOT)), target))
    return found


@pytest.mark.parametrize(("doc", "target"), links())
def test_every_relative_link_resolves_inside_the_repository(doc: str, target: str) -> None:
    path, _, fragment = target.partition("#")
    resolved = ((ROOT / doc).parent / path).resolve() if path else ROOT / doc
    assert resolved.is_relative_to(ROOT), f"{doc} links outside the repository: {target}"
    assert resolved.exists(), f"{doc} links to a missing file: {target}"
    if fragment:
        headings = re.findall(r"^#+ (.*)$", resolved.read_text("utf-8"), flags=re.MULTILINE)
        assert fragment in {anchor(h) for h in headings}, f"{doc}: no heading #{fragment}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text("utf-8")
    assert "../shared" not in text
    assert "/work/" not in text
