"""The operations dashboard plots only what exists.

A dashboard that graphs a metric nobody emits shows a flat line that looks like "all quiet", so
every widget is checked against the truth, not against a list written next to it:

- the metrics the handler emits and the fields of its ``batch summary`` line come from a real
  run of the handler on the real PostgreSQL (tests/support/batch_summary.py says how it covers
  every field);
- an AWS metric must be one AWS publishes for a resource of this stack, with that resource's
  dimension (the table below, from the AWS/Lambda and AWS/SQS metric references).

Then a planted wrong name, namespace, dimension or log field must be reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

import pytest
from conftest import new_key_spec
from login_etl.constants import Reason
from support.batch_summary import Emitted, RealOutput, query_fields, real_run, unknown_fields
from unit.test_template import FUNCTION_ID, TEMPLATE, parse, sam_transform

DASHBOARD_ID: Final = "Dashboard"

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


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return sam_transform(parse(TEMPLATE.read_text()))


@pytest.fixture(scope="module")
def real_output(cfn: dict[str, Any], pg_server_url: str) -> Iterator[RealOutput]:
    """One real run for the whole module (the planted-mistake tests reuse it)."""
    env = cfn["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]
    with real_run(env, pg_server_url, new_key_spec()) as real:
        yield real


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


def log_problems(
    cfn: dict[str, Any], widget: dict[str, Any], summary_fields: frozenset[str]
) -> Iterator[str]:
    title = widget["properties"]["title"]
    query = widget["properties"]["query"]
    group, _, _ = query_fields(query)
    ref = _reference(group) if group else None
    function_group = cfn["Resources"][FUNCTION_ID]["Properties"]["LoggingConfig"]["LogGroup"]
    if ref is None or {"Ref": ref[0]} != function_group:
        yield f"{title!r}: SOURCE {group} is not the function's log group"
    unknown = unknown_fields(query, summary_fields)
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
