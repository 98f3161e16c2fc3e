"""template.yaml, checked offline the way CloudFormation would see it.

Three stages, each able to fail on its own:

1. cfn-lint on the SAM template. cfn-lint transforms SAM itself, but it silently skips a
   resource whose SAM properties do not translate, so a typo inside a SAM event (``Events:``)
   passes. The template declares its event source mapping as a plain resource, which stage 1
   checks directly; a SAM event added later would only be checked by stage 2.
2. The SAM -> CloudFormation transform with aws-sam-translator's Python API (what
   CloudFormation runs on deploy), with a managed-policy loader that needs no AWS account.
3. cfn-lint again on the transformed template, which checks the generated resources against
   the CloudFormation schemas (a typo that SAM passes through, such as ``ScalingConfig``'s keys).

Then the invariants of DESIGN.md ("Deployment") are asserted on the transformed template.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from cfnlint.decode import decode_str
from login_etl.constants import CONFIG_ENV_VARS
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION_ID = "LoginEtlFunction"
ESM_ID = "LoginQueueEventSourceMapping"  # the function's SQS trigger
REGION = "us-east-1"
# A syntactically valid stand-in for what `sam package` uploads; nothing is fetched.
OFFLINE_CODE_URI = "s3://login-etl-offline-check/function.zip"

# Lambda's published deprecation dates (docs: "Lambda runtimes"); DESIGN.md asks for a runtime
# with at least a year of support left.
RUNTIME_DEPRECATION = {
    "python3.12": date(2028, 10, 31),
    "python3.13": date(2029, 6, 30),
}
# EC2 actions Lambda needs for VPC network interfaces; they accept no resource-level permission.
ACTIONS_WITHOUT_RESOURCE_LEVEL = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


class OfflineManagedPolicyLoader:
    """Stands in for samtranslator's IAM-backed loader: the template names no managed policy by
    short name (its roles are explicit), so an empty map is the truth, and no AWS call is made."""

    def load(self) -> dict[str, str]:
        return {}


# --- the checker ------------------------------------------------------------------------------


def parse(text: str) -> dict[str, Any]:
    """Parse a template (YAML short-form tags included) to plain JSON-able data."""
    template, matches = decode_str(text)
    if matches:
        raise ValueError("; ".join(str(m) for m in matches))
    plain: dict[str, Any] = json.loads(json.dumps(template, default=str))
    return plain


def lint_errors(template_text: str) -> list[str]:
    """cfn-lint's errors (not warnings) for a template given as text."""
    matches = lint(template_text, config=ManualArgs(regions=[REGION]))
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id[0] == "E"]


def sam_transform(sam: dict[str, Any]) -> dict[str, Any]:
    """Translate SAM to CloudFormation offline. Raises samtranslator's InvalidDocumentException."""
    sam = copy.deepcopy(sam)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = OFFLINE_CODE_URI
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": REGION}):
        return transform(sam, {}, OfflineManagedPolicyLoader())


def check_template(text: str) -> list[str]:
    """Every problem the three offline stages find; empty when the template is deployable."""
    problems = [f"cfn-lint (SAM): {e}" for e in lint_errors(text)]
    try:
        cfn = sam_transform(parse(text))
    except Exception as e:  # noqa: BLE001 - any translator failure is a finding to report
        return [*problems, f"sam-translator: {e}"]
    problems += [f"cfn-lint (transformed): {e}" for e in lint_errors(json.dumps(cfn, indent=1))]
    return problems


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam_text() -> str:
    return TEMPLATE.read_text()


@pytest.fixture(scope="module")
def sam(sam_text: str) -> dict[str, Any]:
    return parse(sam_text)


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(sam)


def resources_of(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def the(cfn: dict[str, Any], kind: str) -> dict[str, Any]:
    found = list(resources_of(cfn, kind).values())
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]["Properties"]


def branches(value: Any) -> Iterator[Any]:
    """Every value an ``Fn::If`` may resolve to (AWS::NoValue dropped); the value itself otherwise."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from branches(branch)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource id, statement) for every identity-policy statement, on every Fn::If branch."""
    for rid, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for item in as_list(document["Statement"]):
                for statement in branches(item):
                    yield rid, statement


def function_env(cfn: dict[str, Any]) -> dict[str, Any]:
    return cfn["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]


def event_source_mapping(cfn: dict[str, Any]) -> dict[str, Any]:
    return the(cfn, "AWS::Lambda::EventSourceMapping")


# --- the three stages pass on the committed template -------------------------------------------


def test_committed_template_passes_all_three_stages(sam_text: str) -> None:
    assert check_template(sam_text) == []


# --- ...and they fail on planted typos ----------------------------------------------------------

PLANTED_TYPOS = [
    # (what is replaced, by what, the text the report must contain)
    ("BatchSize: !Ref BatchSize", "BatchSizee: !Ref BatchSize", "BatchSizee"),
    ("FunctionResponseTypes:", "FunctionResponseType:", "FunctionResponseType"),
    ("[ReportBatchItemFailures]", "[ReportBatchItemFailure]", "ReportBatchItemFailure"),
    (
        "Type: AWS::Lambda::EventSourceMapping",
        "Type: AWS::Lambda::EventSourceMaping",
        "EventSourceMaping",
    ),
    (
        "MaximumConcurrency: !Ref MaximumConcurrency",
        "MaxConcurrency: !Ref MaximumConcurrency",
        "MaxConcurrency",
    ),
    ("Handler: login_etl", "Handlr: login_etl", "Handlr"),
]


@pytest.mark.parametrize(("old", "new", "reported"), PLANTED_TYPOS, ids=[t[2] for t in PLANTED_TYPOS])
def test_checker_reports_a_planted_typo(sam_text: str, old: str, new: str, reported: str) -> None:
    assert sam_text.count(old) == 1, f"the template no longer contains {old!r}"
    problems = check_template(sam_text.replace(old, new))
    assert problems, f"planting {new!r} went unnoticed"
    assert any(reported in p for p in problems), problems


# A SAM SQS event with a typo, as it would be if someone moved the mapping back into `Events:`.
PLANTED_SAM_EVENT = """\
      Events:
        Extra:
          Type: SQS
          Properties:
            Queue: !GetAtt LoginQueue.Arn
            BatchSizee: 10
"""


def test_cfn_lint_alone_misses_a_typo_inside_a_sam_event(sam_text: str) -> None:
    """Why stage 2 exists: this typo only fails in the SAM translator (and on deploy)."""
    anchor = "          POWERTOOLS_LOG_LEVEL: !Ref LogLevel\n"
    assert sam_text.count(anchor) == 1
    planted = sam_text.replace(anchor, anchor + PLANTED_SAM_EVENT)
    assert lint_errors(planted) == []
    assert any("BatchSizee" in p and "sam-translator" in p for p in check_template(planted))


def test_the_function_has_no_sam_events_so_the_mapping_is_the_declared_one(
    sam: dict[str, Any], cfn: dict[str, Any]
) -> None:
    """The dashboard and the LocalStack tier name the mapping by its logical id; a SAM event
    would add a second, generated mapping that LocalStack's validator cannot resolve."""
    assert "Events" not in sam["Resources"][FUNCTION_ID]["Properties"]
    assert list(resources_of(cfn, "AWS::Lambda::EventSourceMapping")) == [ESM_ID]


# --- invariants on the transformed template -----------------------------------------------------


def test_partial_batch_responses_are_on(cfn: dict[str, Any]) -> None:
    assert event_source_mapping(cfn)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_event_source_reads_the_login_queue(cfn: dict[str, Any]) -> None:
    esm = event_source_mapping(cfn)
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["LoginQueue", "Arn"]}
    assert esm["FunctionName"] == {"Ref": FUNCTION_ID}


@pytest.mark.parametrize(
    ("prop", "parameter"),
    [
        (("BatchSize",), "BatchSize"),
        (("MaximumBatchingWindowInSeconds",), "MaximumBatchingWindowInSeconds"),
        (("ScalingConfig", "MaximumConcurrency"), "MaximumConcurrency"),
    ],
)
def test_event_source_settings_are_parameters(
    cfn: dict[str, Any], prop: tuple[str, ...], parameter: str
) -> None:
    value: Any = event_source_mapping(cfn)
    for key in prop:
        value = value[key]
    assert value == {"Ref": parameter}
    assert parameter in cfn["Parameters"]


def test_visibility_timeout_is_at_least_six_times_the_function_timeout(
    cfn: dict[str, Any],
) -> None:
    function = cfn["Resources"][FUNCTION_ID]["Properties"]
    queue = cfn["Resources"]["LoginQueue"]["Properties"]
    assert function["Timeout"] == {"Ref": "FunctionTimeout"}
    mapping, key_ref, attribute = queue["VisibilityTimeout"]["Fn::FindInMap"]
    assert key_ref == {"Ref": "FunctionTimeout"}
    window_max = int(cfn["Parameters"]["MaximumBatchingWindowInSeconds"]["MaxValue"])
    allowed = cfn["Parameters"]["FunctionTimeout"]["AllowedValues"]
    assert allowed, "FunctionTimeout must be a closed set, so each value has a visibility timeout"
    for timeout in allowed:
        visibility = int(cfn["Mappings"][mapping][str(timeout)][attribute])
        assert visibility >= 6 * int(timeout) + window_max, (timeout, visibility)
        assert visibility <= 43200  # the SQS maximum (12 hours)


def test_redrive_sends_to_the_dlq_after_five_receives(cfn: dict[str, Any]) -> None:
    redrive = cfn["Resources"]["LoginQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["LoginDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == 5
    dlq = cfn["Resources"]["LoginDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_log_group_has_retention_and_is_the_functions(cfn: dict[str, Any]) -> None:
    log_group = cfn["Resources"]["FunctionLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert int(cfn["Parameters"]["LogRetentionInDays"]["Default"]) > 0
    function = cfn["Resources"][FUNCTION_ID]["Properties"]
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    # The group carries the function's default name too, so tools that assume it still work.
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-login-etl"}
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-login-etl"}


EXPECTED_ALARMS = {
    # alarm: (namespace, metric, the resource its dimension names)
    "DeadLetterQueueDepthAlarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "LoginDeadLetterQueue"),
    "FunctionErrorsAlarm": ("AWS/Lambda", "Errors", FUNCTION_ID),
    "OldestMessageAgeAlarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "LoginQueue"),
    "RejectedRecordsAlarm": ("LoginEtl", "RecordsRejected", None),
}


@pytest.mark.parametrize("alarm_id", EXPECTED_ALARMS)
def test_alarm_exists_and_notifies_the_topic(cfn: dict[str, Any], alarm_id: str) -> None:
    namespace, metric, dimension_of = EXPECTED_ALARMS[alarm_id]
    alarm = cfn["Resources"][alarm_id]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert cfn["Resources"]["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    dimension_values = json.dumps([d["Value"] for d in props["Dimensions"]])
    if dimension_of is not None:
        assert f'"{dimension_of}"' in dimension_values
    else:  # Powertools' EMF dimension
        assert props["Dimensions"] == [{"Name": "service", "Value": "login-etl"}]


def test_dlq_and_error_alarms_fire_on_the_first_occurrence(cfn: dict[str, Any]) -> None:
    for alarm_id in ("DeadLetterQueueDepthAlarm", "FunctionErrorsAlarm"):
        assert cfn["Resources"][alarm_id]["Properties"]["Threshold"] == 0


def test_age_and_rejected_thresholds_are_parameters(cfn: dict[str, Any]) -> None:
    age = cfn["Resources"]["OldestMessageAgeAlarm"]["Properties"]["Threshold"]
    rejected = cfn["Resources"]["RejectedRecordsAlarm"]["Properties"]["Threshold"]
    assert age == {"Ref": "OldestMessageAgeAlarmSeconds"}
    assert rejected == {"Ref": "RejectedRecordsAlarmThreshold"}


def test_alarm_email_subscription_is_optional(cfn: dict[str, Any]) -> None:
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert cfn["Parameters"]["AlarmEmail"]["Default"] == ""


def test_no_iam_statement_allows_every_resource_where_one_can_be_named(cfn: dict[str, Any]) -> None:
    seen = 0
    for rid, statement in iam_statements(cfn):
        seen += 1
        if statement["Effect"] != "Allow":
            continue
        actions = set(as_list(statement["Action"]))
        assert not any(a == "*" or a.endswith(":*") for a in actions), (rid, statement)
        if "*" in as_list(statement["Resource"]):
            assert actions <= ACTIONS_WITHOUT_RESOURCE_LEVEL, (rid, statement)
    assert seen >= 5


def test_no_role_gets_an_aws_managed_policy(cfn: dict[str, Any]) -> None:
    # AWS managed policies (AWSLambdaBasicExecutionRole, ...) allow every log group or queue.
    for rid, role in resources_of(cfn, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], rid


def test_function_reads_only_the_two_named_secrets(cfn: dict[str, Any]) -> None:
    secret_resources = [
        s["Resource"]
        for rid, s in iam_statements(cfn)
        if rid == "FunctionRole" and "secretsmanager:GetSecretValue" in as_list(s["Action"])
    ]
    assert sorted(json.dumps(r) for r in secret_resources) == sorted(
        [json.dumps({"Ref": "DbSecretArn"}), json.dumps({"Ref": "PiiKeysSecretArn"})]
    )


def test_kms_decrypt_only_for_a_given_key_through_secrets_manager(cfn: dict[str, Any]) -> None:
    kms = [s for _, s in iam_statements(cfn) if "kms:Decrypt" in as_list(s["Action"])]
    assert kms
    # A given key only, and only through the service that owns the data (the queue key: SQS).
    via = {"SecretsKmsKeyArn": "secretsmanager", "QueueKmsKeyArn": "sqs"}
    for statement in kms:
        key = statement["Resource"]["Ref"]
        assert key in via
        assert statement["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"].startswith(via[key] + ".")


def test_function_role_is_limited_to_its_log_group_and_queue(cfn: dict[str, Any]) -> None:
    by_sid = {s.get("Sid"): s for rid, s in iam_statements(cfn) if rid == "FunctionRole"}
    assert by_sid["WriteOwnLogs"]["Resource"] == {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}
    assert by_sid["ConsumeLoginQueue"]["Resource"] == {"Fn::GetAtt": ["LoginQueue", "Arn"]}
    assert "logs:CreateLogGroup" not in json.dumps(by_sid)


def test_handler_resolves_to_a_real_function() -> None:
    function = parse(TEMPLATE.read_text())["Resources"][FUNCTION_ID]["Properties"]
    assert function["CodeUri"] == "function/"
    assert (ROOT / "function").is_dir()
    module_name, _, attribute = function["Handler"].rpartition(".")
    module = importlib.import_module(module_name)
    assert Path(module.__file__ or "").resolve().is_relative_to(ROOT / "function")
    assert callable(getattr(module, attribute))


def test_runtime_has_a_year_of_support_left(cfn: dict[str, Any]) -> None:
    runtime = cfn["Resources"][FUNCTION_ID]["Properties"]["Runtime"]
    assert runtime in RUNTIME_DEPRECATION, f"add {runtime}'s deprecation date to the table"
    assert (RUNTIME_DEPRECATION[runtime] - date.today()).days >= 365


def test_powertools_is_bundled_not_a_layer(cfn: dict[str, Any]) -> None:
    assert "Layers" not in cfn["Resources"][FUNCTION_ID]["Properties"]
    requirements = (ROOT / "function" / "requirements.txt").read_text().lower()
    assert "aws-lambda-powertools" in requirements


def test_every_variable_the_code_reads_is_set_by_the_template(cfn: dict[str, Any]) -> None:
    env = function_env(cfn)
    assert set(CONFIG_ENV_VARS) <= set(env), set(CONFIG_ENV_VARS) - set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == "login-etl"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "LoginEtl"
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_secrets_come_from_secrets_manager_and_no_key_from_the_template(cfn: dict[str, Any]) -> None:
    env = function_env(cfn)
    assert env["DB_SECRET_ARN"] == {"Ref": "DbSecretArn"}
    assert env["PII_KEYS_SECRET_ARN"] == {"Ref": "PiiKeysSecretArn"}
    assert env["PII_KEYS"] == ""  # never a key in a template; sam local gets it from env.json
    assert env["DATABASE_URL"] == ""


def test_tls_is_verify_full_on_aws_and_off_on_localstack(cfn: dict[str, Any]) -> None:
    env = function_env(cfn)
    assert env["DB_SSLMODE"] == {"Fn::If": ["IsLocalStack", "disable", "verify-full"]}
    assert env["DB_SSLROOTCERT"] == {"Fn::If": ["IsLocalStack", "", {"Ref": "DbSslRootCert"}]}
    assert cfn["Parameters"]["Target"]["AllowedValues"] == ["aws", "localstack"]
    assert cfn["Conditions"]["IsLocalStack"] == {"Fn::Equals": [{"Ref": "Target"}, "localstack"]}


def test_vpc_is_optional(cfn: dict[str, Any]) -> None:
    function = cfn["Resources"][FUNCTION_ID]["Properties"]
    assert function["VpcConfig"]["Fn::If"][0] == "HasVpc"
    for name in ("VpcSubnetIds", "VpcSecurityGroupIds"):
        assert cfn["Parameters"][name]["Type"] == "CommaDelimitedList"
        assert cfn["Parameters"][name]["Default"] == ""


def test_rds_proxy_is_optional_and_requires_tls(cfn: dict[str, Any]) -> None:
    for rid in ("RdsProxy", "RdsProxyTargetGroup", "RdsProxyRole"):
        assert cfn["Resources"][rid]["Condition"] == "CreateRdsProxy"
    proxy = cfn["Resources"]["RdsProxy"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["Auth"][0]["SecretArn"] == {"Ref": "DbSecretArn"}
    assert cfn["Outputs"]["RdsProxyEndpoint"]["Condition"] == "CreateRdsProxy"


def test_queues_are_encrypted_and_refuse_plain_http(cfn: dict[str, Any]) -> None:
    for qid in ("LoginQueue", "LoginDeadLetterQueue"):
        # SSE-SQS, or SSE-KMS with a customer managed key when QueueKmsKeyArn is set.
        queue = cfn["Resources"][qid]["Properties"]
        assert queue["SqsManagedSseEnabled"] == {"Fn::If": ["HasQueueKmsKey", {"Ref": "AWS::NoValue"}, True]}
        assert queue["KmsMasterKeyId"] == {
            "Fn::If": ["HasQueueKmsKey", {"Ref": "QueueKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
        }
    policy = the(cfn, "AWS::SQS::QueuePolicy")["PolicyDocument"]["Statement"][0]
    assert policy["Effect"] == "Deny"
    assert policy["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("output", ["QueueUrl", "DeadLetterQueueUrl", "FunctionName", "LogGroupName"])
def test_outputs(cfn: dict[str, Any], output: str) -> None:
    assert output in cfn["Outputs"]
