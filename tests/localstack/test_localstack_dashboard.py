"""The CloudWatch dashboard, deployed to LocalStack and read back with get-dashboard (issue 12).

LocalStack emits none of the AWS/Lambda or AWS/SQS metrics the dashboard plots, so this checks
its shape: that the stack created it under the stack's name, and that every widget came through
with each `${...}` of the template resolved to this stack's own resources. LocalStack community
has no CloudFormation provider for the dashboard and would skip it with the physical id
`unknown`; the project's provider (localstack/host-executor/login_etl_local_executor/dashboard.py)
fills that gap. Runs after test_localstack.py, on the same deployment (conftest.tier).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .conftest import STACK, Tier
from .test_localstack import template

DASHBOARD_ID = "Dashboard"
ESM_ID = "LoginQueueEventSourceMapping"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def physical_ids(tier: Tier) -> dict[str, str]:
    resources = tier.client("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def resolver(tier: Tier, ids: dict[str, str]) -> dict[str, str]:
    """Every value the dashboard body's Fn::Sub names, read from the deployed stack itself."""
    cloudwatch = tier.client("cloudwatch")
    values = {"AWS::Region": "us-east-1", "AWS::StackName": STACK}
    for logical, physical in ids.items():
        values[logical] = physical
        if logical in ("LoginQueue", "LoginDeadLetterQueue"):  # the physical id is the queue URL
            values[f"{logical}.QueueName"] = physical.rsplit("/", 1)[1]
    alarms = cloudwatch.describe_alarms(AlarmNames=[ids[a] for a in ids if a.endswith("Alarm")])
    by_name = {a["AlarmName"]: a["AlarmArn"] for a in alarms["MetricAlarms"]}
    for logical, physical in ids.items():
        if physical in by_name:
            values[f"{logical}.Arn"] = by_name[physical]
    return values


def expected_body(tier: Tier) -> dict[str, Any]:
    body = template()["Resources"][DASHBOARD_ID]["Properties"]["DashboardBody"]["Fn::Sub"]
    values = resolver(tier, physical_ids(tier))
    missing = sorted({name for name in PLACEHOLDER.findall(body) if name not in values})
    assert not missing, f"the template's dashboard names what the stack does not have: {missing}"
    resolved: dict[str, Any] = json.loads(PLACEHOLDER.sub(lambda m: values[m.group(1)], body))
    return resolved


def test_the_dashboard_is_an_output_named_after_the_stack(tier: Tier) -> None:
    assert tier.outputs["DashboardName"] == STACK
    assert tier.outputs["DashboardUrl"].endswith(f"#dashboards/dashboard/{STACK}")
    assert physical_ids(tier)[DASHBOARD_ID] == STACK


def test_get_dashboard_returns_the_templates_widgets(tier: Tier) -> None:
    found = tier.client("cloudwatch").get_dashboard(DashboardName=tier.outputs["DashboardName"])
    assert found["DashboardName"] == STACK
    widgets = json.loads(found["DashboardBody"])["widgets"]
    expected = expected_body(tier)["widgets"]
    assert len(widgets) == len(expected) > 0
    assert widgets == expected


def test_the_mapping_widget_names_the_deployed_mapping(tier: Tier) -> None:
    """The event-source-mapping widget plots by EventSourceMappingUUID: it must be the UUID of the
    mapping LocalStack's poller really runs, not a stale or generated id."""
    (mapping,) = tier.client("lambda").list_event_source_mappings(FunctionName=tier.outputs["FunctionName"])[
        "EventSourceMappings"
    ]
    assert physical_ids(tier)[ESM_ID] == mapping["UUID"]
    found = tier.client("cloudwatch").get_dashboard(DashboardName=tier.outputs["DashboardName"])
    plotted = {
        entry[3]
        for widget in json.loads(found["DashboardBody"])["widgets"]
        if widget["type"] == "metric"
        for entry in widget["properties"]["metrics"]
        if len(entry) > 3 and entry[2] == "EventSourceMappingUUID"
    }
    assert plotted == {mapping["UUID"]}
