"""Every Logs Insights query the project hands an operator reads fields the log really has.

A query over a field that no line carries returns empty columns, or no rows at all behind a
``filter``, which reads as "nothing happened". The queries are found where an operator meets
them: ``make insights`` (mk/*.mk) and the docs (fenced blocks and inline code in README.md and
docs/*.md); the dashboard's own query is checked by test_dashboard.py. Their fields are checked
against the ``batch summary`` lines of a real run of the handler on the real PostgreSQL
(tests/support/batch_summary.py), which include a transiently failed batch and its ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from conftest import new_key_spec
from support.batch_summary import RealOutput, real_run, unknown_fields
from unit.test_template import FUNCTION_ID, TEMPLATE, parse, sam_transform

REPO: Final = Path(__file__).resolve().parents[2]
#: A query starts with one of these commands (the ones that read fields).
_COMMAND: Final = r"(?:fields|filter|stats|sort|parse|display|dedup)\s"
_DEFINE: Final = re.compile(r"^define (\w+)\n(.*?)\nendef$", re.M | re.S)
_FENCED: Final = re.compile(r"^```\w*\n(.*?)^```$", re.M | re.S)
_INLINE: Final = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def documented_queries() -> list[tuple[str, str]]:
    """(where, query) for every Logs Insights query in the Makefiles and the docs."""
    found: list[tuple[str, str]] = []
    for mk in sorted((REPO / "mk").glob("*.mk")):
        for name, body in _DEFINE.findall(mk.read_text()):
            if re.match(_COMMAND, body):
                found.append((f"{mk.relative_to(REPO)} {name}", body))
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        blocks = list(_FENCED.finditer(text))
        outside = _FENCED.sub(lambda m: "\n" * m.group(0).count("\n"), text)  # line numbers kept
        for match in [*blocks, *_INLINE.finditer(outside)]:
            query = match.group(1).strip()
            if re.match(_COMMAND, query):
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{doc.relative_to(REPO)}:{line}", query))
    return found


QUERIES: Final = documented_queries()


@pytest.fixture(scope="module")
def real_output(pg_server_url: str) -> Iterator[RealOutput]:
    env = sam_transform(parse(TEMPLATE.read_text()))["Resources"][FUNCTION_ID]["Properties"]["Environment"]
    with real_run(env["Variables"], pg_server_url, new_key_spec()) as real:
        yield real


def test_the_queries_are_found_where_an_operator_meets_them() -> None:
    places = {re.split(r"[ :]", where)[0] for where, _ in QUERIES}
    assert {"mk/deploy.mk", "docs/deployment.md", "docs/operations.md"} <= places, QUERIES
    # make insights runs the query the docs show first: one text, not two that drift apart.
    [make] = [query for where, query in QUERIES if where == "mk/deploy.mk INSIGHTS_QUERY"]
    assert make in [query for where, query in QUERIES if where.startswith("docs/deployment.md")]


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[where for where, _ in QUERIES])
def test_every_field_a_query_reads_is_in_a_real_batch_summary(
    real_output: RealOutput, where: str, query: str
) -> None:
    assert unknown_fields(query, real_output.summary_fields) == set(), f"{where}: {query}"


PLANTED = [
    ("sum(inserted)", "sum(insertd)", "insertd"),
    ("failed > 0", "failures > 0", "failures"),
    ("pct(batch_ms, 99)", "pct(batch_duration_ms, 99)", "batch_duration_ms"),
    ("fields @timestamp", "fields @time", "@time"),
]


@pytest.mark.parametrize(("old", "new", "reported"), PLANTED, ids=[p[2] for p in PLANTED])
def test_a_planted_wrong_field_is_reported(
    real_output: RealOutput, old: str, new: str, reported: str
) -> None:
    [query] = [q for _, q in QUERIES if old in q][:1]
    assert unknown_fields(query.replace(old, new), real_output.summary_fields) == {reported}
