"""The audit trail of ``reveal`` and ``rejects --replay``: written before any plaintext leaves the
process, naming a caller that the caller's own environment cannot spoof, never a value."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import uuid
from typing import Any

import boto3
import pytest
from login_etl.constants import AD_DEVICE_ID, AD_IP
from login_etl.pii import KeyRing
from login_etl_cli.runner import drain
from login_etl_cli.sender import send_bodies
from support.pg import TestDB

from .conftest import LOGIN_ETL, QueueFactory, run_cli

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def audits(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line[len("audit: ") :]) for line in stderr.splitlines() if line.startswith("audit: ")]


def no_aws(env: dict[str, str]) -> dict[str, str]:
    """No credentials anywhere boto3 looks, so the caller is the OS user."""
    clean = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    return clean | {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}


@pytest.fixture
def reveal_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cli_env.items() if k != "DATABASE_URL"}


def test_a_broken_pipe_after_the_first_value_still_leaves_the_audit_record(
    reveal_env: dict[str, str], keyring: KeyRing
) -> None:
    """``| head -1`` closes the pipe after one value: the record must already be out, and must
    name the real account even though the caller set USER and LOGNAME to someone else."""
    ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(20_000)]  # > a pipe buffer
    masked = "\n".join(keyring.mask(ip, AD_IP) for ip in ips) + "\n"
    env = no_aws(reveal_env) | {"USER": "mallory", "LOGNAME": "mallory"}

    reveal = subprocess.Popen(
        [LOGIN_ETL, "reveal", "-"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    head = subprocess.Popen(["head", "-1"], stdin=reveal.stdout, stdout=subprocess.PIPE, text=True)
    assert reveal.stdout is not None
    reveal.stdout.close()  # only head holds the read end now
    _, err = reveal.communicate(masked, timeout=120)
    first, _ = head.communicate(timeout=30)

    assert first == ips[0] + "\n"
    assert reveal.returncode != 0  # it did hit the broken pipe
    [record] = audits(err)
    assert record["audit"] == "reveal" and record["count"] == len(ips) and record["key_ids"] == ["k1"]
    assert record["who_source"] == "os-user"
    assert record["who"] == f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"
    assert "mallory" not in err
    assert ips[0] not in err and ips[1] not in err


def test_with_aws_credentials_the_caller_is_the_sts_identity_and_values_are_never_recorded(
    reveal_env: dict[str, str], keyring: KeyRing
) -> None:
    values = [keyring.mask("192.0.2.7", AD_IP), keyring.mask("device-77", AD_DEVICE_ID), "zz:junk"]

    result = run_cli("reveal", *values, env=reveal_env)

    assert result.returncode == 1  # the junk value does not reveal
    [record] = audits(result.stderr)
    assert (record["who"], record["who_source"]) == (MOTO_CALLER, "sts")
    assert record["count"] == 3 and record["key_ids"] == ["k1", "zz"]
    assert result.stderr.index("audit: ") < result.stderr.index("error: value 3")
    for secret in ("192.0.2.7", "device-77", *values):
        assert secret not in result.stderr


def test_the_record_goes_to_cloudwatch_logs_when_a_group_is_configured(
    reveal_env: dict[str, str], keyring: KeyRing, sqs_endpoint: str
) -> None:
    logs = boto3.client("logs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    group = f"/login-etl/audit-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    env = reveal_env | {"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": sqs_endpoint, "LOGIN_ETL_AUDIT_LOG_GROUP": group}

    result = run_cli("reveal", keyring.mask("198.51.100.1", AD_IP), env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "198.51.100.1\n"
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert [json.loads(e["message"]) for e in events] == audits(result.stderr)
    [record] = audits(result.stderr)
    assert record["who"] == MOTO_CALLER and record["count"] == 1


def test_no_audit_record_means_no_reveal(
    reveal_env: dict[str, str], keyring: KeyRing, sqs_endpoint: str
) -> None:
    env = reveal_env | {
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": sqs_endpoint,
        "LOGIN_ETL_AUDIT_LOG_GROUP": "/no/such/group",
    }

    result = run_cli("reveal", keyring.mask("198.51.100.2", AD_IP), env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "cannot write the audit record to CloudWatch Logs group /no/such/group" in result.stderr
    assert "198.51.100.2" not in result.stderr


def test_replay_records_each_chunk_before_sending_it(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory, sqs_endpoint: str
) -> None:
    source, target = make_queue(), make_queue()
    send_bodies(source.sqs, source.url, [f'{{"user_id": "u{i}", "ip": "203.0.113.{i}"' for i in range(12)])
    drain(source.sqs, source.url)
    assert lambda_env.count("user_logins_rejected") == 12

    result = run_cli(
        "rejects", "--replay", "--queue-url", target.url, "--endpoint-url", sqs_endpoint, env=cli_env
    )

    assert result.returncode == 0, result.stderr
    records = audits(result.stderr)
    assert [(r["audit"], r["count"], r["key_ids"], r["who"]) for r in records] == [
        ("replay", 10, ["k1"], MOTO_CALLER),
        ("replay", 2, ["k1"], MOTO_CALLER),
    ]
    assert "203.0.113." not in result.stderr
    assert target.depth() == 12


def test_show_prints_one_rejected_body_after_its_audit_record(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    source = make_queue()
    body = '{"user_id": "u1", "ip": "203.0.113.9", "note": "\\u001b[31m"'
    sent = send_bodies(source.sqs, source.url, [body])
    drain(source.sqs, source.url)
    mid = sent.message_ids[0]

    result = run_cli("rejects", "--show", mid, env=cli_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == body and "\x1b" not in result.stdout
    [record] = audits(result.stderr)
    assert (record["audit"], record["count"], record["message_id"]) == ("show-reject", 1, mid)
    assert "203.0.113.9" not in result.stderr
    missing = run_cli("rejects", "--show", "no-such-id", env=cli_env)
    assert missing.returncode == 1 and audits(missing.stderr) == []
