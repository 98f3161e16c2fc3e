"""template.yaml's security controls (issue 13), asserted on the SAM-transformed template.

Keys: a customer managed key whose policy lets only the function role and the operator role
decrypt, through Secrets Manager, for the named secrets; secret resource policies that deny
GetSecretValue to everyone else. Queues: only the function consumes the login queue, only the
operator the DLQ, producers can be named, SSE-KMS is an option, the DLQ only serves the login
queue. Smaller findings: full-ARN parameter patterns, the LocalStack-account rule, log data
protection and KMS, IAM auth for RDS Proxy, the alarm topic policy.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import pytest
from unit.test_template import TEMPLATE, as_list, branches, iam_statements, parse, sam_transform

GOOD_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:login-etl/pii-keys-AbC123"
GOOD_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
GOOD_MRK = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234567890abcdef1234567890abcdef"
GOOD_ROLE = "arn:aws:iam::123456789012:role/ops/login-etl-operator"
SECRET_PARAMS = ["DbSecretArn", "PiiKeysSecretArn", "OperatorKeysSecretArn"]
KMS_PARAMS = ["SecretsKmsKeyArn", "QueueKmsKeyArn", "LogsKmsKeyArn"]
#: What lets a principal read or use the key material, directly or by granting itself the right.
KEY_USE = ["kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
           "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"]  # fmt: skip


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return sam_transform(parse(TEMPLATE.read_text()))


def allowed(cfn: dict[str, Any], param: str, value: str) -> bool:
    """CloudFormation's AllowedPattern check: the whole value must match (Java regex semantics)."""
    return re.fullmatch(cfn["Parameters"][param]["AllowedPattern"], value) is not None


def wildcard_variants(arn: str) -> list[str]:
    """Every way to widen ``arn`` with a wildcard: each ``:``/``/``-separated part, or its tail,
    replaced by ``*`` or ``?``, and ``*`` appended or put in the middle of the resource name."""
    parts = re.split(r"([:/])", arn)
    variants = set()
    for i in range(0, len(parts), 2):
        for wild in ("*", "?", parts[i][:3] + "*"):
            variants.add("".join([*parts[:i], wild, *parts[i + 1 :]]))
        variants.add("".join([*parts[:i], "*"]))
    variants |= {arn + "*", arn[:-3] + "*", arn[:-4] + "?" + arn[-3:]}
    return sorted(v for v in variants if v != arn)


# --- 5. full-ARN parameter patterns -----------------------------------------------------------


@pytest.mark.parametrize("param", SECRET_PARAMS)
def test_secret_parameters_take_a_full_arn_and_refuse_every_wildcard(cfn: dict[str, Any], param: str) -> None:
    assert allowed(cfn, param, GOOD_SECRET) and allowed(cfn, param, "")
    widened = [v for v in wildcard_variants(GOOD_SECRET) if allowed(cfn, param, v)]
    assert widened == []
    # A partial ARN (no random suffix) would match every version of a name: refused too.
    assert not allowed(cfn, param, GOOD_SECRET.rsplit("-", 1)[0])
    assert not allowed(cfn, param, "REPLACE_ME_with_the_secret_arn")


@pytest.mark.parametrize("param", KMS_PARAMS)
def test_kms_parameters_take_a_key_arn_and_refuse_every_wildcard_and_alias(
    cfn: dict[str, Any], param: str
) -> None:
    assert allowed(cfn, param, GOOD_KEY) and allowed(cfn, param, GOOD_MRK) and allowed(cfn, param, "")
    assert [v for v in wildcard_variants(GOOD_KEY) if allowed(cfn, param, v)] == []
    assert not allowed(cfn, param, "arn:aws:kms:eu-west-1:123456789012:alias/aws/secretsmanager")


def test_the_operator_role_parameter_takes_a_role_arn_only(cfn: dict[str, Any]) -> None:
    assert allowed(cfn, "OperatorRoleArn", GOOD_ROLE) and allowed(cfn, "OperatorRoleArn", "")
    assert [v for v in wildcard_variants(GOOD_ROLE) if allowed(cfn, "OperatorRoleArn", v)] == []
    assert not allowed(cfn, "OperatorRoleArn", "arn:aws:iam::123456789012:user/alice")


def test_target_localstack_is_asserted_to_the_localstack_account(cfn: dict[str, Any]) -> None:
    [rule] = cfn["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Target"}, "localstack"]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "000000000000"]}


# --- 1. keys ------------------------------------------------------------------------------------


def key_statements(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    policy = cfn["Resources"]["PiiKeysKmsKey"]["Properties"]["KeyPolicy"]
    return [s for item in policy["Statement"] for s in branches(item)]


def principals(statement: dict[str, Any]) -> list[Any]:
    return as_list(statement["Principal"]["AWS"]) if isinstance(statement["Principal"], dict) else ["*"]


FUNCTION = {"Fn::GetAtt": ["FunctionRole", "Arn"]}
OPERATOR = {"Ref": "OperatorRoleArn"}


def test_the_key_ring_key_is_created_or_accepted_and_only_on_aws(cfn: dict[str, Any]) -> None:
    key = cfn["Resources"]["PiiKeysKmsKey"]
    assert key["Condition"] == "CreatePiiKeysKmsKey"
    conditions = cfn["Conditions"]["CreatePiiKeysKmsKey"]["Fn::And"]
    assert {"Condition": "IsAws"} in conditions and {
        "Fn::Not": [{"Condition": "HasSecretsKmsKey"}]
    } in conditions
    assert key["Properties"]["EnableKeyRotation"] is True
    assert cfn["Outputs"]["PiiKeysKmsKeyArn"]["Condition"] == "CreatePiiKeysKmsKey"


def test_only_the_function_and_the_operator_may_use_the_key_and_only_through_secrets_manager(
    cfn: dict[str, Any],
) -> None:
    users = []
    for statement in key_statements(cfn):
        actions = as_list(statement["Action"])
        uses = [a for a in actions if any(fnmatch.fnmatchcase(use, a) for use in KEY_USE)]
        if statement["Effect"] != "Allow" or not uses:
            continue
        users += principals(statement)
        condition = statement["Condition"]["StringEquals"]
        assert condition["kms:ViaService"] == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
        assert "kms:EncryptionContext:SecretARN" in condition
    assert sorted(map(str, users)) == sorted(map(str, [FUNCTION, OPERATOR]))


def test_the_function_decrypts_only_its_own_secret_with_the_key(cfn: dict[str, Any]) -> None:
    [mine] = [s for s in key_statements(cfn) if s["Effect"] == "Allow" and principals(s) == [FUNCTION]]
    assert as_list(mine["Action"]) == ["kms:Decrypt"]
    assert mine["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == {"Ref": "PiiKeysSecretArn"}


def test_decrypt_is_denied_to_every_other_principal_admins_included(cfn: dict[str, Any]) -> None:
    [deny] = [s for s in key_statements(cfn) if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and as_list(deny["Action"]) == ["kms:Decrypt"]
    exempt = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert exempt[0] == FUNCTION
    assert exempt[1] == {"Fn::If": ["HasOperatorRole", OPERATOR, FUNCTION]}


def test_the_secret_key_policies_deny_read_to_all_but_the_named_roles(cfn: dict[str, Any]) -> None:
    expected = {
        "PiiKeysSecretPolicy": (
            "PiiKeysSecretArn",
            [FUNCTION, {"Fn::If": ["HasOperatorRole", OPERATOR, FUNCTION]}],
        ),
        "OperatorKeysSecretPolicy": ("OperatorKeysSecretArn", OPERATOR),
    }
    for rid, (secret, exempt) in expected.items():
        resource = cfn["Resources"][rid]
        assert resource["Type"] == "AWS::SecretsManager::ResourcePolicy"
        props = resource["Properties"]
        assert props["SecretId"] == {"Ref": secret} and props["BlockPublicPolicy"] is True
        [statement] = props["ResourcePolicy"]["Statement"]
        assert (statement["Effect"], statement["Principal"]) == ("Deny", "*")
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        assert statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == exempt
        assert {"Condition": "IsAws"} in cfn["Conditions"][resource["Condition"]]["Fn::And"]


def test_the_account_administers_the_key_but_cannot_use_it(cfn: dict[str, Any]) -> None:
    [admin] = [s for s in key_statements(cfn) if s.get("Sid") == "AccountAdministersButDoesNotUse"]
    for action in as_list(admin["Action"]):
        assert action != "kms:*"
        assert not [use for use in KEY_USE if fnmatch.fnmatchcase(use, action)], action


# --- 3. queues --------------------------------------------------------------------------------


def queue_statements(cfn: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Sid -> every branch of that statement."""
    found: dict[str, list[dict[str, Any]]] = {}
    document = cfn["Resources"]["QueuesTlsOnlyPolicy"]["Properties"]["PolicyDocument"]
    for item in document["Statement"]:
        for statement in branches(item):
            found.setdefault(statement["Sid"], []).append(statement)
    return found


CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:PurgeQueue"}


def test_only_the_function_consumes_the_login_queue(cfn: dict[str, Any]) -> None:
    [deny] = queue_statements(cfn)["OnlyTheFunctionConsumesTheLoginQueue"]
    assert (deny["Effect"], deny["Principal"], set(deny["Action"])) == ("Deny", "*", CONSUME)
    assert deny["Resource"] == {"Fn::GetAtt": ["LoginQueue", "Arn"]}
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": FUNCTION}}


def test_only_the_operator_consumes_the_dlq_and_nobody_without_one(cfn: dict[str, Any]) -> None:
    found = queue_statements(cfn)
    [operator_only] = found["OnlyTheOperatorConsumesTheDeadLetterQueue"]
    [nobody] = found["NobodyConsumesTheDeadLetterQueue"]
    for deny in (operator_only, nobody):
        assert (deny["Effect"], deny["Principal"], set(deny["Action"])) == ("Deny", "*", CONSUME)
        assert deny["Resource"] == {"Fn::GetAtt": ["LoginDeadLetterQueue", "Arn"]}
    assert operator_only["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": OPERATOR}}
    assert "Condition" not in nobody


def test_send_can_be_scoped_to_named_principals_topics_and_rules(cfn: dict[str, Any]) -> None:
    found = queue_statements(cfn)
    [deny] = found["OnlyNamedProducersSend"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    condition = deny["Condition"]["ArnNotEquals"]  # one block: denied only if neither matches
    assert "ProducerPrincipalArns" in str(condition["aws:PrincipalArn"])
    assert "OperatorRoleArn" in str(condition["aws:PrincipalArn"])  # replays
    assert condition["aws:SourceArn"] == {"Ref": "ProducerSourceArns"}
    [allow] = found["NamedTopicsAndRulesSend"]
    assert allow["Principal"] == {"Service": ["sns.amazonaws.com", "events.amazonaws.com"]}
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "ProducerSourceArns"}}}
    for param in ("ProducerPrincipalArns", "ProducerSourceArns"):
        assert cfn["Parameters"][param]["Type"] == "CommaDelimitedList"


def test_the_dlq_serves_only_the_login_queue(cfn: dict[str, Any]) -> None:
    allow = cfn["Resources"]["LoginDeadLetterQueue"]["Properties"]["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    [source] = allow["sourceQueueArns"]
    name = cfn["Resources"]["LoginQueue"]["Properties"]["QueueName"]["Fn::Sub"]
    assert source["Fn::Sub"] == f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}"


def test_the_function_may_decrypt_queue_messages_only_with_the_queue_key_through_sqs(
    cfn: dict[str, Any],
) -> None:
    [statement] = [s for rid, s in iam_statements(cfn) if s.get("Sid") == "DecryptQueueMessages"]
    assert statement["Resource"] == {"Ref": "QueueKmsKeyArn"}
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"
    }


# --- 5. logs, RDS Proxy, alarm topic ----------------------------------------------------------


def test_the_function_log_group_masks_ip_addresses_and_can_use_a_cmk(cfn: dict[str, Any]) -> None:
    group = cfn["Resources"]["FunctionLogGroup"]["Properties"]
    assert group["KmsKeyId"] == {
        "Fn::If": ["HasLogsKmsKey", {"Ref": "LogsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    condition, policy, _ = group["DataProtectionPolicy"]["Fn::If"]
    assert condition == "ProtectLogData"
    assert {"Condition": "IsAws"} in cfn["Conditions"]["ProtectLogData"]["Fn::And"]
    operations = {next(iter(s["Operation"])) for s in policy["Statement"]}
    assert operations == {"Audit", "Deidentify"}
    for statement in policy["Statement"]:
        assert statement["DataIdentifier"] == [
            {"Fn::Sub": "arn:${AWS::Partition}:dataprotection::aws:data-identifier/IpAddress"}
        ]


def test_the_audit_log_group_is_separate_and_kept(cfn: dict[str, Any]) -> None:
    audit = cfn["Resources"]["AuditLogGroup"]["Properties"]
    assert audit["RetentionInDays"] >= 365
    assert cfn["Outputs"]["AuditLogGroupName"]["Value"] == {"Ref": "AuditLogGroup"}


def test_rds_proxy_can_require_iam_auth_and_the_function_may_connect(cfn: dict[str, Any]) -> None:
    [auth] = cfn["Resources"]["RdsProxy"]["Properties"]["Auth"]
    assert auth["IAMAuth"] == {"Ref": "RdsProxyIamAuth"}
    assert cfn["Parameters"]["RdsProxyIamAuth"]["AllowedValues"] == ["DISABLED", "REQUIRED"]
    [connect] = [s for rid, s in iam_statements(cfn) if s.get("Sid") == "ConnectToTheProxyWithIam"]
    assert connect["Action"] == "rds-db:connect"
    assert ":dbuser:${ProxyId}/${RdsProxyDbUser}" in connect["Resource"]["Fn::Sub"][0]


def test_alarms_are_the_only_publishers_to_the_alarm_topic_over_tls(cfn: dict[str, Any]) -> None:
    statements = {
        s["Sid"]: s for s in cfn["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }
    allow = statements["AlarmsOfThisAccountPublish"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    deny = statements["NobodyElsePublishes"]
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalServiceName": "cloudwatch.amazonaws.com"}}
    tls = statements["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_what_localstack_community_cannot_create_is_for_target_aws_only(cfn: dict[str, Any]) -> None:
    for rid in ("PiiKeysKmsKey", "PiiKeysSecretPolicy", "OperatorKeysSecretPolicy"):
        condition = cfn["Conditions"][cfn["Resources"][rid]["Condition"]]
        assert {"Condition": "IsAws"} in condition["Fn::And"], rid


def test_the_operator_policy_grants_exactly_what_the_operator_commands_need(cfn: dict[str, Any]) -> None:
    policy = cfn["Resources"]["OperatorPolicy"]
    assert policy["Condition"] == "HasOperatorRole"
    statements = {
        s["Sid"]: s for item in policy["Properties"]["PolicyDocument"]["Statement"] for s in branches(item)
    }
    assert statements["ReadAndRotateTheOperatorKeySecret"]["Resource"] == {"Ref": "OperatorKeysSecretArn"}
    # The function's key secret: written at rotation, never read (the operator secret has every key).
    assert statements["RotateTheFunctionKeySecret"]["Action"] == "secretsmanager:PutSecretValue"
    assert statements["RedriveTheDeadLetterQueue"]["Resource"] == {
        "Fn::GetAtt": ["LoginDeadLetterQueue", "Arn"]
    }
    assert "sqs:StartMessageMoveTask" in statements["RedriveTheDeadLetterQueue"]["Action"]
    replay = statements["ReplayToTheLoginQueue"]
    assert replay["Resource"] == {"Fn::GetAtt": ["LoginQueue", "Arn"]}
    assert not CONSUME & set(as_list(replay["Action"]))  # sending only: the login queue is the function's
    assert statements["WriteAuditRecords"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["WriteAuditRecords"]["Resource"] == {"Fn::GetAtt": ["AuditLogGroup", "Arn"]}
    assert cfn["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}
