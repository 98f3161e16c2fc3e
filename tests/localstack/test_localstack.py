"""The deployed stack on LocalStack, and the function run by LocalStack's own SQS poller.

The tests run in file order and share one deployment (conftest.tier): first what was deployed,
then the exercise data, the logs, and the database outage with its DLQ and redrive.
"""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import REPO, STACK, Tier, host, run_make

LOGIN_ETL = Path(REPO / ".venv" / "bin" / "login-etl")
EXERCISE = REPO / "data" / "exercise_logins.ndjson"
FUNCTION_ID = "LoginEtlFunction"


def overrides() -> dict[str, str]:
    """samconfig.toml's [localstack] parameter_overrides, what `make deploy-localstack` deploys."""
    with (REPO / "samconfig.toml").open("rb") as f:
        config = tomllib.load(f)
    items = config["localstack"]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in items)


def template() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse((REPO / "template.yaml").read_text()))


def template_default(name: str) -> str:
    return str(template()["Parameters"][name]["Default"])


def wait_for(what: str, check: Callable[[], bool], timeout: float, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def wait_until_equal(what: str, observe: Callable[[], Any], expected: Any, timeout: float) -> None:
    """Poll observe() until it returns expected; a timeout names the last value seen."""
    seen: list[Any] = [None]

    def check() -> bool:
        seen[0] = observe()
        return bool(seen[0] == expected)

    try:
        wait_for(what, check, timeout)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; last seen {seen[0]!r}, expected {expected!r} "
            f"(LocalStack's log: {host.cache_dir() / 'last-test-run.log'})"
        ) from None


def depth(tier: Tier, queue_url: str) -> int:
    attrs = tier.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def landed(tier: Tier) -> tuple[int, int, int, int]:
    """(rows, rejects, messages in the queue, messages in the DLQ)."""
    queues = (tier.outputs["QueueUrl"], tier.outputs["DeadLetterQueueUrl"])
    return (
        tier.count("user_logins"),
        tier.count("user_logins_rejected"),
        depth(tier, queues[0]),
        depth(tier, queues[1]),
    )


def send(tier: Tier, *source: str) -> None:
    queue = tier.outputs["QueueUrl"]
    done = subprocess.run(
        [str(LOGIN_ETL), "send", "--queue-url", queue, "--endpoint-url", tier.url, *source],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    assert done.returncode == 0, done.stderr


def log_messages(tier: Tier) -> list[str]:
    logs = tier.client("logs")
    events: list[str] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=tier.outputs["LogGroupName"]):
        events += [event["message"] for event in page["events"]]
    return events


def json_lines(messages: list[str]) -> list[dict[str, Any]]:
    found = []
    for message in messages:
        try:
            line = json.loads(message)
        except ValueError:
            continue
        if isinstance(line, dict):
            found.append(line)
    return found


# --- what was deployed ----------------------------------------------------------------------------
def test_the_readme_command_created_the_stack(tier: Tier) -> None:
    assert tier.outputs["_status"] == "CREATE_COMPLETE"
    assert "Successfully created/updated stack" in tier.deploy_output


def test_queue_visibility_timeout_and_redrive_to_the_dlq(tier: Tier) -> None:
    sqs = tier.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=tier.outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=tier.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])
    timeout = overrides().get("FunctionTimeout", template_default("FunctionTimeout"))
    # The template's mapping: 6 x timeout + the largest batching window (60 s).
    assert int(attrs["VisibilityTimeout"]) == 6 * int(timeout) + 60
    assert attrs["QueueArn"] == tier.outputs["QueueArn"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["Attributes"]["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5


def test_event_source_mapping(tier: Tier) -> None:
    (mapping,) = tier.client("lambda").list_event_source_mappings(FunctionName=tier.outputs["FunctionName"])[
        "EventSourceMappings"
    ]
    expected = overrides()
    assert mapping["EventSourceArn"] == tier.outputs["QueueArn"]
    assert mapping["BatchSize"] == int(expected["BatchSize"])
    assert mapping["MaximumBatchingWindowInSeconds"] == int(expected["MaximumBatchingWindowInSeconds"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == int(expected["MaximumConcurrency"])
    assert mapping["State"] == "Enabled"


def test_function_runtime_handler_and_environment(tier: Tier) -> None:
    config = tier.client("lambda").get_function_configuration(FunctionName=tier.outputs["FunctionName"])
    secrets = tier.client("secretsmanager")
    assert config["Runtime"] == "python3.12"
    assert config["Handler"] == "login_etl.handler.lambda_handler"
    assert config["State"] == "Active"
    assert config["LoggingConfig"]["LogGroup"] == tier.outputs["LogGroupName"]
    env = config["Environment"]["Variables"]
    expected = overrides()
    assert env["DB_SECRET_ARN"] == secrets.describe_secret(SecretId="login-etl/db")["ARN"]
    assert env["PII_KEYS_SECRET_ARN"] == secrets.describe_secret(SecretId="login-etl/pii-keys")["ARN"]
    assert env["DB_SSLMODE"] == "disable"  # Target=localstack
    assert env["AUTO_MIGRATE"] == expected["AutoMigrate"]
    assert env["POWERTOOLS_LOG_LEVEL"] == expected["LogLevel"]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LoginEtl"
    assert env["PII_KEYS"] == ""  # no key in the template, ever


def test_four_alarms_notify_the_alarm_topic(tier: Tier) -> None:
    alarms = tier.client("cloudwatch").describe_alarms()["MetricAlarms"]
    ours = {a["MetricName"]: a for a in alarms if tier.outputs["AlarmTopicArn"] in a["AlarmActions"]}
    assert set(ours) == {
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "ApproximateAgeOfOldestMessage",
        "RecordsRejected",
    }
    for alarm in ours.values():
        assert alarm["AlarmActions"] == [tier.outputs["AlarmTopicArn"]]
    assert ours["Errors"]["Dimensions"] == [{"Name": "FunctionName", "Value": tier.outputs["FunctionName"]}]
    topics = [t["TopicArn"] for t in tier.client("sns").list_topics()["Topics"]]
    assert tier.outputs["AlarmTopicArn"] in topics


def test_log_group_and_outputs(tier: Tier) -> None:
    groups = tier.client("logs").describe_log_groups(logGroupNamePrefix=tier.outputs["LogGroupName"])
    (group,) = groups["logGroups"]
    assert group["logGroupName"] == f"/aws/lambda/{STACK}-login-etl"
    # LocalStack 4.14's AWS::Logs::LogGroup ignores RetentionInDays (its provider never calls
    # PutRetentionPolicy): an AWS-only property, checked offline by tests/unit/test_template.py.
    assert group.get("retentionInDays") in (None, int(overrides()["LogRetentionInDays"]))
    assert tier.outputs["FunctionName"] == f"{STACK}-login-etl"
    # Every unconditional output of the template is deployed, and nothing else but conditional ones.
    outputs = template()["Outputs"]
    unconditional = {name for name, output in outputs.items() if "Condition" not in output}
    assert unconditional <= set(tier.outputs) - {"_status"} <= set(outputs)
    sqs = tier.client("sqs")
    assert (
        sqs.get_queue_url(QueueName=tier.outputs["QueueUrl"].rsplit("/", 1)[1])["QueueUrl"]
        == (tier.outputs["QueueUrl"])
    )


# --- the function, run by LocalStack's own event source mapping ----------------------------------
def test_exercise_data_lands_through_localstacks_poller(tier: Tier) -> None:
    # The README's command: it reads QueueUrl from the stack's outputs, then `login-etl send`.
    output = run_make("send", tier.url)
    assert f"sending data/exercise_logins.ndjson to {tier.outputs['QueueUrl']}" in output
    wait_until_equal("(rows, rejects, queue, DLQ)", lambda: landed(tier), (99, 1, 0, 0), timeout=180)
    time.sleep(3)  # nothing more arrives: no redelivery, no late duplicate
    assert landed(tier) == (99, 1, 0, 0)


def test_batch_summary_is_read_back_from_cloudwatch_logs(tier: Tier) -> None:
    bodies = [json.loads(line) for line in EXERCISE.read_text().splitlines()]
    messages: list[str] = []

    def received_all() -> bool:
        messages[:] = log_messages(tier)
        lines = json_lines(messages)
        received: int = sum(
            line.get("received", 0) for line in lines if line.get("message") == "batch summary"
        )
        return received >= 100

    wait_for("the batch summaries in CloudWatch Logs", received_all, timeout=60)
    summaries = [line for line in json_lines(messages) if line.get("message") == "batch summary"]
    assert sum(s["received"] for s in summaries) == 100
    assert sum(s["inserted"] for s in summaries) == 99
    assert sum(s["rejected"] for s in summaries) == 1
    assert sum(s["failed"] for s in summaries) == 0
    for summary in summaries:
        assert {"duplicates", "rejected_by_reason", "batch_ms", "insert_ms", "transform_ms"} <= summary.keys()
        assert summary["level"] == "INFO"
        assert summary["service"] == "login-etl"
    # The invocation report, as Lambda writes it, is there too.
    assert any(m.startswith("REPORT RequestId:") for m in messages)
    # No raw ip or device_id anywhere in the log group.
    text = "\n".join(messages)
    for body in bodies:
        for field in ("ip", "device_id"):
            value = body.get(field)
            if isinstance(value, str) and len(value) >= 7:
                assert value not in text, f"raw {field} in CloudWatch Logs"
    # Powertools' EMF documents reach the log group (LocalStack community does not turn them into
    # metrics; AWS does): their RecordsRejected values add up to the one reject.
    emf = [line for line in json_lines(messages) if "_aws" in line]
    assert emf
    assert sum(_total(line.get("RecordsRejected", 0)) for line in emf) == 1


def _total(value: float | list[float]) -> float:
    """An EMF metric value: one number, or the list Powertools writes for repeated values."""
    return sum(value) if isinstance(value, list) else value


def test_database_down_moves_messages_to_the_dlq_and_writes_nothing(tier: Tier) -> None:
    sqs = tier.client("sqs")
    queue, dlq = tier.outputs["QueueUrl"], tier.outputs["DeadLetterQueueUrl"]
    deployed = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    # Five receives at the deployed 240 s would take 20 minutes: the test shortens the visibility
    # timeout of the deployed queue (only here) so each failed receive returns within seconds.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "2"})
    # A receive already waiting when the attribute changes (the poller long-polls for up to the
    # batching window) would still hide what it gets for the old 240 s: let it return first.
    time.sleep(int(overrides()["MaximumBatchingWindowInSeconds"]) + 2)
    tier.cluster.stop()
    try:
        send(tier, "--synthetic", "20", "--seed", "91")
        wait_until_equal("(queue, DLQ)", lambda: (depth(tier, queue), depth(tier, dlq)), (0, 20), timeout=240)
        assert depth(tier, queue) == 0
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes=deployed)
        tier.cluster.start()
    assert (tier.count("user_logins"), tier.count("user_logins_rejected")) == (99, 1)
    summaries = [line for line in json_lines(log_messages(tier)) if line.get("message") == "batch summary"]
    assert sum(s["inserted"] for s in summaries) == 99  # no batch wrote while the database was down


def test_redrive_after_restart_lands_every_message_exactly_once(tier: Tier) -> None:
    sqs = tier.client("sqs")
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=tier.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=tier.outputs["QueueArn"])
    wait_until_equal("(rows, rejects, queue, DLQ)", lambda: landed(tier), (119, 1, 0, 0), timeout=180)
    time.sleep(3)  # and no late duplicate
    assert landed(tier) == (119, 1, 0, 0)
