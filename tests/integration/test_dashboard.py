"""The operations dashboard plots only what exists.

A dashboard that graphs a metric nobody emits shows a flat line that looks like "all quiet", so
every widget is checked against the truth, not against a list written next to it:

- the metrics the handler emits are captured by running the real handler, in a fresh process
  with the function's POWERTOOLS_* settings taken from the transformed template, on real batches
  against the real PostgreSQL, and parsing the EMF blobs it prints (namespace, name, dimensions);
- the fields of the ``batch summary`` log line come from the same run (every reject reason
  included: the batch carries one body per reason a body can earn, and a row the database itself
  refuses, for ``db_rejected``);
- an AWS metric must be one AWS publishes for a resource of this stack, with that resource's
  dimension (the table below, from the AWS/Lambda and AWS/SQS metric references).

Then a planted wrong name, namespace, dimension or log field must be reported.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from conftest import new_key_spec
from login_etl.constants import Reason
from login_etl.store import PgStore
from login_etl_cli.synth import INVALID_REASONS, generate
from support.pg import TestDB, connect
from unit.test_template import FUNCTION_ID, TEMPLATE, parse, sam_transform

DASHBOARD_ID: Final = "Dashboard"
#: A user_id the test database refuses (a CHECK constraint), so that one valid-looking row is
#: refused by the database itself and rejected as db_rejected, through the handler's real path.
REFUSED_USER: Final = "refused-by-the-database"

#: (namespace, dimension) -> (the resource type it names, how the dashboard must name it, metrics).
#: Sources: "Types of metrics for Lambda functions" (invocation, performance, concurrency and
#: event source mapping metrics) and "Available CloudWatch metrics for Amazon SQS".
AWS_METRICS: Final[dict[tuple[str, str], tuple[str, str, frozenset[str]]]] = {
    ("AWS/Lambda", "FunctionName"): (
        "AWS::Lambda::Function",
        "Ref",
        frozenset({"Invocations", "Errors", "Throttles", "ConcurrentExecutions", "Duration"}),
    ),
    ("AWS/Lambda", "EventSourceMappingUUID"): (
        "AWS::Lambda::EventSourceMapping",
        "Ref",
        frozenset(
            {
                "PolledEventCount",
                "InvokedEventCount",
                "FilteredOutEventCount",
                "FailedInvokeEventCount",
                "DeletedEventCount",
                "DroppedEventCount",
            }
        ),
    ),
    ("AWS/SQS", "QueueName"): (
        "AWS::SQS::Queue",
        "QueueName",
        frozenset(
            {
                "ApproximateNumberOfMessagesVisible",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateAgeOfOldestMessage",
                "NumberOfMessagesSent",
                "NumberOfMessagesReceived",
                "NumberOfMessagesDeleted",
            }
        ),
    ),
}
#: Fields Logs Insights adds to every log event.
INSIGHTS_FIELDS: Final = frozenset({"@timestamp", "@message", "@logStream", "@log", "@ingestionTime"})
INSIGHTS_KEYWORDS: Final = frozenset(
    {"fields", "filter", "stats", "sort", "limit", "display", "by", "as", "and", "or", "not", "in",
     "like", "asc", "desc", "dedup"}
)  # fmt: skip

#: An ip whose masking raises in the run below: the handler's catch-all for a bug on one
#: record's path (``unprocessable``), reached the way tests/reliability/test_one_record.py does.
BUG_IP: Final = "203.0.113.66"
# The handler in a process of its own, so Powertools reads the template's settings at import.
_INVOKE: Final = f"""
import json, sys
from login_etl import handler
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
for event in json.load(sys.stdin):
    handler.lambda_handler(event, LocalContext())
handler.reset()
"""

Emitted = frozenset[tuple[str, str, frozenset[tuple[str, str]]]]


@dataclass(frozen=True)
class RealOutput:
    """What the handler really printed: its EMF metrics and its ``batch summary`` field names."""

    metrics: Emitted
    summary_fields: frozenset[str]


# --- what the code really emits ----------------------------------------------------------------
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


def _events(bodies: list[str]) -> list[dict[str, Any]]:
    from login_etl_cli.lambda_event import make_event, make_record

    records = [make_record(body) for body in bodies]
    records[-1]["attributes"]["SentTimestamp"] = "999999999999999"  # past the year 9999: bad_attribute
    batch = dict(make_event(records))
    return [batch, batch]  # the second delivery is all duplicates


def _run_handler(template_env: dict[str, Any], db_url: str, key_spec: str, bodies: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "DB_", "PII_"))}
    env.update({k: v for k, v in template_env.items() if k.startswith("POWERTOOLS_") and isinstance(v, str)})
    env.update(POWERTOOLS_LOG_LEVEL="INFO", DATABASE_URL=db_url, PII_KEYS=key_spec)
    done = subprocess.run(
        [sys.executable, "-c", _INVOKE],
        input=json.dumps(_events(bodies)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return sam_transform(parse(TEMPLATE.read_text()))


@pytest.fixture(scope="module")
def real_output(cfn: dict[str, Any], pg_server_url: str) -> Iterator[RealOutput]:
    """One real run for the whole module (the planted-mistake tests reuse it)."""
    db = TestDB(pg_server_url)
    try:
        yield _capture(cfn, db)
    finally:
        db.drop()


def _capture(cfn: dict[str, Any], db: TestDB) -> RealOutput:
    store = PgStore(lambda: connect(db.url))
    store.migrate()
    store.close()
    db.query(f"ALTER TABLE user_logins ADD CONSTRAINT refuse_one CHECK (user_id <> '{REFUSED_USER}')")
    synthetic = generate(4 * len(INVALID_REASONS), seed=12, invalid_ratio=0.5)
    refused = json.dumps(
        {"user_id": REFUSED_USER, "app_version": "1.0", "device_type": "ios", "ip": "10.1.2.3",
         "locale": "PH", "device_id": "593-47-0001"}
    )  # fmt: skip
    template_env = cfn["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]
    buggy = json.dumps({**json.loads(refused), "user_id": "u-bug", "ip": BUG_IP})
    late = json.dumps({**json.loads(refused), "user_id": "u-sent-in-year-33658"})  # the last: see _events
    printed = _run_handler(template_env, db.url, new_key_spec(), [*synthetic.bodies, refused, buggy, late])

    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    metrics = frozenset(m for line in lines if "_aws" in line for m in _emf_metrics(line))
    summaries = [line for line in lines if line.get("message") == "batch summary"]
    # The run really covered what the dashboard shows: both batches, every reason.
    assert len(summaries) == 2, printed
    assert set(summaries[0]["rejected_by_reason"]) == set(Reason), summaries[0]
    assert summaries[1]["duplicates"] == synthetic.valid
    fields = frozenset(name for line in summaries for name in _flatten(line))
    return RealOutput(metrics, fields)


# --- reading the dashboard ---------------------------------------------------------------------
_PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}")


def dashboard_body(cfn: dict[str, Any]) -> dict[str, Any]:
    """The body as CloudFormation will build it, with each ``${X}`` kept as ``{{X}}``."""
    body = cfn["Resources"][DASHBOARD_ID]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "DashboardBody is one Fn::Sub string"
    marked = _PLACEHOLDER.sub(lambda m: "{{" + m.group(0)[2:-1] + "}}", body)
    parsed: dict[str, Any] = json.loads(marked)
    return parsed


def _reference(value: str) -> tuple[str, str] | None:
    """``{{LoginQueue.QueueName}}`` -> ("LoginQueue", "QueueName"); ``{{X}}`` -> ("X", "Ref")."""
    match = re.fullmatch(r"\{\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}\}", value)
    return (match.group(1), match.group(2) or "Ref") if match else None


def metric_problems(cfn: dict[str, Any], widget: dict[str, Any], emitted: Emitted) -> Iterator[str]:
    title = widget["properties"]["title"]
    for entry in widget["properties"]["metrics"]:
        spec = [part for part in entry if not isinstance(part, dict)]
        if any(part in (".", "...") for part in spec) or len(spec) % 2:
            yield f"{title!r}: write every metric out in full, not {entry}"
            continue
        namespace, name, *pairs = spec
        dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
        if not namespace.startswith("AWS/"):
            if (namespace, name, frozenset(dims.items())) not in emitted:
                yield f"{title!r}: {namespace}/{name} {dims} is not emitted by the handler"
            continue
        if len(dims) != 1:
            yield f"{title!r}: {namespace}/{name} needs exactly one resource dimension, got {dims}"
            continue
        [(dimension, value)] = dims.items()
        known = AWS_METRICS.get((namespace, dimension))
        if known is None or name not in known[2]:
            yield f"{title!r}: {namespace}/{name} by {dimension} is not an AWS metric this stack has"
            continue
        kind, attribute = known[0], known[1]
        ref = _reference(value)
        resource = cfn["Resources"].get(ref[0], {}) if ref else {}
        if ref is None or resource.get("Type") != kind or ref[1] != attribute:
            yield f"{title!r}: {dimension}={value} is not the {attribute} of a {kind} in the stack"


def alarm_problems(cfn: dict[str, Any], widget: dict[str, Any]) -> Iterator[str]:
    alarms = {rid for rid, r in cfn["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    shown = [_reference(arn) for arn in widget["properties"]["alarms"]]
    for ref in shown:
        if ref is None or ref[0] not in alarms or ref[1] != "Arn":
            yield f"alarm widget: {ref} is not the Arn of an alarm in the stack"
    missing = alarms - {ref[0] for ref in shown if ref}
    if missing:
        yield f"alarm widget: alarms not shown: {sorted(missing)}"


_TOKEN: Final = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|[@A-Za-z_][\w.@]*\(?|\d[\w.]*|\S")


def query_fields(query: str) -> tuple[str, set[str], set[str]]:
    """(log group, the fields a Logs Insights query reads, the aliases it defines).

    A small parser for the commands this dashboard uses: string and number literals, function
    names (followed by ``(``), keywords and the names after ``as`` are not fields.
    """
    source, *commands = (part.strip() for part in query.split("|"))
    match = re.fullmatch(r"SOURCE '([^']+)'", source)
    assert match, f"the query must start with SOURCE '<log group>': {source!r}"
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
    return match.group(1), fields, aliases


def log_problems(
    cfn: dict[str, Any], widget: dict[str, Any], summary_fields: frozenset[str]
) -> Iterator[str]:
    title = widget["properties"]["title"]
    group, fields, aliases = query_fields(widget["properties"]["query"])
    ref = _reference(group)
    function_group = cfn["Resources"][FUNCTION_ID]["Properties"]["LoggingConfig"]["LogGroup"]
    if ref is None or {"Ref": ref[0]} != function_group:
        yield f"{title!r}: SOURCE {group} is not the function's log group"
    unknown = fields - summary_fields - INSIGHTS_FIELDS - aliases
    if unknown:
        yield f"{title!r}: fields not in a real batch summary line: {sorted(unknown)}"


def dashboard_problems(cfn: dict[str, Any], real: RealOutput) -> list[str]:
    problems: list[str] = []
    for widget in dashboard_body(cfn)["widgets"]:
        kind = widget["type"]
        if kind == "metric":
            problems += metric_problems(cfn, widget, real.metrics)
        elif kind == "log":
            problems += log_problems(cfn, widget, real.summary_fields)
        elif kind == "alarm":
            problems += alarm_problems(cfn, widget)
        else:
            problems.append(f"unexpected widget type {kind}")
    return problems


# --- the tests ---------------------------------------------------------------------------------
def test_every_widget_plots_something_that_exists(cfn: dict[str, Any], real_output: RealOutput) -> None:
    assert dashboard_problems(cfn, real_output) == []


def test_the_dashboard_shows_every_kind_of_widget_the_issue_asks_for(cfn: dict[str, Any]) -> None:
    widgets = dashboard_body(cfn)["widgets"]
    plotted = {
        (entry[0], entry[1])
        for widget in widgets
        if widget["type"] == "metric"
        for entry in widget["properties"]["metrics"]
    }
    for namespace, name in [
        ("LoginEtl", "RecordsInserted"), ("LoginEtl", "RecordsDuplicate"), ("LoginEtl", "RecordsRejected"),
        ("LoginEtl", "RecordsFailed"), ("LoginEtl", "BatchDuration"), ("LoginEtl", "InsertDuration"),
        ("AWS/Lambda", "Invocations"), ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "ConcurrentExecutions"), ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "PolledEventCount"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    ]:  # fmt: skip
        assert (namespace, name) in plotted, name
    assert [w["type"] for w in widgets].count("log") == 1
    assert [w["type"] for w in widgets].count("alarm") == 1
    titles = [w["properties"]["title"] for w in widgets]
    assert len(set(titles)) == len(titles)


def test_batch_duration_is_shown_as_median_and_p99(cfn: dict[str, Any]) -> None:
    [widget] = [w for w in dashboard_body(cfn)["widgets"] if "Batch and insert" in w["properties"]["title"]]
    stats = {(e[1], e[-1]["stat"]) for e in widget["properties"]["metrics"]}
    assert {("BatchDuration", "p50"), ("BatchDuration", "p99"), ("InsertDuration", "p50")} <= stats


def test_rejects_widget_names_every_reason_the_code_has(cfn: dict[str, Any]) -> None:
    [widget] = [w for w in dashboard_body(cfn)["widgets"] if w["type"] == "log"]
    _, fields, aliases = query_fields(widget["properties"]["query"])
    assert {f"rejected_by_reason.{r}" for r in Reason} <= fields
    assert {str(r) for r in Reason} <= aliases


def test_dashboard_is_named_after_the_stack_and_its_url_is_an_output(cfn: dict[str, Any]) -> None:
    props = cfn["Resources"][DASHBOARD_ID]["Properties"]
    assert props["DashboardName"] == {"Ref": "AWS::StackName"}
    url = cfn["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("#dashboards/dashboard/${Dashboard}")
    # On every target, LocalStack included (its tier reads the dashboard back).
    assert "Condition" not in cfn["Resources"][DASHBOARD_ID]
    assert "Condition" not in cfn["Outputs"]["DashboardName"]
    assert "Condition" not in cfn["Outputs"]["DashboardUrl"]


def test_event_source_mapping_publishes_its_event_counts(cfn: dict[str, Any]) -> None:
    [esm] = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert esm["Properties"]["MetricsConfig"] == {"Metrics": ["EventCount"]}


PLANTED = [
    # (in the template, replaced by, what the report must name)
    ('"RecordsInserted", "service"', '"RecordsInsertd", "service"', "RecordsInsertd"),
    ('["LoginEtl", "BatchDuration", "service", "login-etl", {"stat": "p50"',
     '["LoginETL", "BatchDuration", "service", "login-etl", {"stat": "p50"', "LoginETL/BatchDuration"),
    ('"RecordsFailed", "service", "login-etl"', '"RecordsFailed", "function", "login-etl"', "RecordsFailed"),
    ('"RecordsRejected", "service", "login-etl"', '"RecordsRejected", "service", "login_etl"',
     "RecordsRejected"),
    ('"Throttles", "FunctionName"', '"Throttled", "FunctionName"', "AWS/Lambda/Throttled"),
    ('"ApproximateAgeOfOldestMessage", "QueueName", "${LoginQueue.QueueName}"',
     '"ApproximateAgeOfOldestMessage", "QueueName", "${LoginQueue.Arn}"', "QueueName={{LoginQueue.Arn}}"),
    ("sum(rejected_by_reason.bad_ip)", "sum(rejected_by_reason.bad_ipv4)", "rejected_by_reason.bad_ipv4"),
    ('"${RejectedRecordsAlarm.Arn}"', '"${FunctionErrorsAlarm.Arn}"', "RejectedRecordsAlarm"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "reported"), PLANTED, ids=[p[2] for p in PLANTED])
def test_a_planted_mistake_is_reported(real_output: RealOutput, old: str, new: str, reported: str) -> None:
    text = TEMPLATE.read_text()
    assert text.count(old) == 1, f"the template no longer contains {old!r}"
    problems = dashboard_problems(sam_transform(parse(text.replace(old, new))), real_output)
    assert any(reported in p for p in problems), problems
