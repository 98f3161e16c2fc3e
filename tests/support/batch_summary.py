"""What the handler really prints, and which fields a Logs Insights query reads.

Both the dashboard test and the test of the documented queries check names against the truth,
not against a list written next to them:

- ``capture`` runs the real handler, in a fresh process with the function's POWERTOOLS_*
  settings taken from the transformed template, on real batches against the real PostgreSQL, and
  returns its EMF metrics (namespace, name, dimensions) and the field names of its ``batch
  summary`` lines. The batches cover every field such a line can carry: one body per reject
  reason (a row the database itself refuses for ``db_rejected``, a masking bug for
  ``unprocessable``), a redelivery (``duplicates``), and a batch that fails transiently (a
  statement timeout behind a lock), whose line alone carries ``error``.
- ``query_fields`` reads the field names out of a Logs Insights query.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from login_etl.constants import Reason
from login_etl.store import PgStore
from login_etl_cli.synth import INVALID_REASONS, generate

from support.pg import TestDB, connect

#: A user_id the test database refuses (a CHECK constraint), so that one valid-looking row is
#: refused by the database itself and rejected as db_rejected, through the handler's real path.
REFUSED_USER: Final = "refused-by-the-database"
#: An ip whose masking raises in the run below: the handler's catch-all for a bug on one
#: record's path (``unprocessable``), reached the way tests/reliability/test_one_record.py does.
BUG_IP: Final = "203.0.113.66"
#: Short enough that the locked batch fails fast, long enough for the others on a busy machine.
STATEMENT_TIMEOUT_MS: Final = 1500

TESTS: Final = Path(__file__).resolve().parent.parent

#: Fields Logs Insights adds to every log event.
INSIGHTS_FIELDS: Final = frozenset({"@timestamp", "@message", "@logStream", "@log", "@ingestionTime"})
INSIGHTS_KEYWORDS: Final = frozenset(
    {"fields", "filter", "stats", "sort", "limit", "display", "by", "as", "and", "or", "not", "in",
     "like", "asc", "desc", "dedup"}
)  # fmt: skip

# The handler in a process of its own, so Powertools reads the template's settings at import. The
# last event meets both tables locked by another session: its statements time out (57014), every
# record fails transiently and the invocation raises, after its summary line.
_INVOKE: Final = f"""
import json, os, sys
sys.path.insert(0, {str(TESTS)!r})
from support.pg import connect
from login_etl import handler
from login_etl.errors import TransientStoreError
from login_etl.pii import KeyRing
from login_etl_cli.context import LocalContext
real_mask, real_mask_many = KeyRing.mask, KeyRing.mask_many
def mask(self, value, ad):
    if value == "{BUG_IP}":
        raise ZeroDivisionError
    return real_mask(self, value, ad)
def mask_many(self, values, ad):
    if "{BUG_IP}" in values:
        raise ZeroDivisionError
    return real_mask_many(self, values, ad)
KeyRing.mask, KeyRing.mask_many = mask, mask_many
*events, locked = json.load(sys.stdin)
for event in events:
    handler.lambda_handler(event, LocalContext())
locker = connect(os.environ["DATABASE_URL"])
locker.run("BEGIN")
locker.run("LOCK TABLE user_logins, user_logins_rejected IN ACCESS EXCLUSIVE MODE")
try:
    handler.lambda_handler(locked, LocalContext())
except TransientStoreError:
    pass
else:
    sys.exit("the batch behind the lock did not fail")
locker.run("ROLLBACK")
locker.close()
handler.reset()
"""

Emitted = frozenset[tuple[str, str, frozenset[tuple[str, str]]]]


@dataclass(frozen=True)
class RealOutput:
    """What the handler really printed: its EMF metrics and its ``batch summary`` field names."""

    metrics: Emitted
    summary_fields: frozenset[str]


def _flatten(line: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Field names as Logs Insights discovers them in a JSON event: nested keys joined by dots."""
    for key, value in line.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def _emf_metrics(blob: dict[str, Any]) -> Iterator[tuple[str, str, frozenset[tuple[str, str]]]]:
    for directive in blob["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            dims = frozenset((name, str(blob[name])) for name in dimension_set)
            for metric in directive["Metrics"]:
                yield directive["Namespace"], metric["Name"], dims


def _events(bodies: list[str], locked_bodies: list[str]) -> list[dict[str, Any]]:
    from login_etl_cli.lambda_event import make_event, make_record

    records = [make_record(body) for body in bodies]
    records[-1]["attributes"]["SentTimestamp"] = "999999999999999"  # past the year 9999: bad_attribute
    batch = dict(make_event(records))
    locked = dict(make_event(make_record(body) for body in locked_bodies))
    return [batch, batch, locked]  # the second delivery is all duplicates


def _run_handler(
    template_env: dict[str, Any], db_url: str, key_spec: str, events: list[dict[str, Any]]
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "DB_", "PII_"))}
    env.update({k: v for k, v in template_env.items() if k.startswith("POWERTOOLS_") and isinstance(v, str)})
    env.update(
        POWERTOOLS_LOG_LEVEL="INFO",
        DATABASE_URL=db_url,
        PII_KEYS=key_spec,
        DB_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
    )
    done = subprocess.run(
        [sys.executable, "-c", _INVOKE],
        input=json.dumps(events),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def real_run(template_env: dict[str, Any], server_url: str, key_spec: str) -> Iterator[RealOutput]:
    """``capture`` in a throwaway database of the test server, dropped after."""
    db = TestDB(server_url)
    try:
        yield capture(template_env, db, key_spec)
    finally:
        db.drop()


def capture(template_env: dict[str, Any], db: TestDB, key_spec: str) -> RealOutput:
    """Run the handler on the batches described above, in the migrated database ``db``."""
    store = PgStore(lambda: connect(db.url))
    store.migrate()
    store.close()
    db.query(f"ALTER TABLE user_logins ADD CONSTRAINT refuse_one CHECK (user_id <> '{REFUSED_USER}')")
    synthetic = generate(4 * len(INVALID_REASONS), seed=12, invalid_ratio=0.5)
    refused = json.dumps(
        {"user_id": REFUSED_USER, "app_version": "1.0", "device_type": "ios", "ip": "10.1.2.3",
         "locale": "PH", "device_id": "593-47-0001"}
    )  # fmt: skip
    buggy = json.dumps({**json.loads(refused), "user_id": "u-bug", "ip": BUG_IP})
    late = json.dumps({**json.loads(refused), "user_id": "u-sent-in-year-33658"})  # the last: see _events
    fresh = [json.dumps({**json.loads(refused), "user_id": f"u-locked-out-{i}"}) for i in range(3)]
    events = _events([*synthetic.bodies, refused, buggy, late], fresh)
    printed = _run_handler(template_env, db.url, key_spec, events)

    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    metrics = frozenset(m for line in lines if "_aws" in line for m in _emf_metrics(line))
    summaries = [line for line in lines if line.get("message") == "batch summary"]
    # The run really covered every field: all three batches, every reason, a transient failure.
    assert len(summaries) == 3, printed
    assert set(summaries[0]["rejected_by_reason"]) == set(Reason), summaries[0]
    assert summaries[1]["duplicates"] == synthetic.valid
    assert summaries[2]["failed"] == len(fresh), summaries[2]
    assert "57014" in summaries[2]["error"], summaries[2]
    fields = frozenset(name for line in summaries for name in _flatten(line))
    return RealOutput(metrics, fields)


_TOKEN: Final = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|[@A-Za-z_][\w.@]*\(?|\d[\w.]*|\S")


def query_fields(query: str) -> tuple[str | None, set[str], set[str]]:
    """(log group or None, the fields a Logs Insights query reads, the aliases it defines).

    A small parser for the commands these queries use: string and number literals, function
    names (followed by ``(``), keywords and the names after ``as`` are not fields. A query for
    the console or ``start_query`` names no log group; a dashboard's starts with ``SOURCE``.
    """
    commands = [part.strip() for part in query.split("|")]
    match = re.fullmatch(r"SOURCE '([^']+)'", commands[0])
    if match:
        commands = commands[1:]
    fields: set[str] = set()
    aliases: set[str] = set()
    for command in commands:
        tokens = _TOKEN.findall(command)
        for i, token in enumerate(tokens):
            previous = tokens[i - 1].lower() if i else ""
            if (
                token[0] in "'\""
                or token[0].isdigit()
                or token.endswith("(")
                or not re.match(r"[@`\w]", token)
            ):
                continue
            name = token.strip("`")
            if previous == "as":
                aliases.add(name)
            elif name.lower() not in INSIGHTS_KEYWORDS:
                fields.add(name)
    return (match.group(1) if match else None), fields, aliases


def unknown_fields(query: str, summary_fields: frozenset[str]) -> set[str]:
    """The fields ``query`` reads that no real ``batch summary`` line has."""
    _, fields, aliases = query_fields(query)
    return fields - summary_fields - INSIGHTS_FIELDS - aliases
