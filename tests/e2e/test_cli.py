"""The ``login-etl`` console script as a user runs it: demo, reveal, migrate, rejects, errors."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import exercise_bodies
from login_etl.constants import AD_BODY, AD_DEVICE_ID, AD_IP
from login_etl.pii import KeyRing
from login_etl_cli.operator import REPLAY_ATTRIBUTE
from login_etl_cli.runner import drain
from login_etl_cli.sender import send_bodies
from support.pg import TestDB

from .conftest import LOGIN_ETL, QueueFactory, run_cli


def _without_db(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("DATABASE_URL", "PII_KEYS")}


# --- demo ---------------------------------------------------------------------------------------
def test_demo_on_the_exercise_data_inserts_99_rejects_1_and_leaves_the_queue_empty(
    cli_env: dict[str, str],
) -> None:
    # As a user runs it: no DATABASE_URL, no key; an embedded Postgres and moto are started.
    result = run_cli("demo", env=_without_db(cli_env), timeout=120)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "inserted=99" in out
    assert "rejected=1" in out
    assert "rejected_missing_field=1" in out
    assert "sent=100 received=100" in out
    assert "failed=0 dlq=0 queued=0" in out
    assert "accounting (sent = inserted + rejected + DLQ + queued): OK" in out
    assert "ephemeral" in out
    assert "Traceback" not in result.stderr


def test_demo_uses_database_url_when_set_and_its_printed_key_reveals_the_rows_shown(
    cli_env: dict[str, str], lambda_env: TestDB
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "PII_KEYS"}
    result = run_cli("demo", "--rows", "3", env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "using the PostgreSQL at DATABASE_URL" in result.stderr
    assert lambda_env.count("user_logins") == 99
    assert lambda_env.count("user_logins_rejected") == 1
    # The summary shows how to reveal a masked value with the run's ephemeral key, as a command
    # that works as printed (login-etl is not on this PATH: the hint names the script's path).
    [hint] = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("PII_KEYS=")]
    match = re.fullmatch(r"PII_KEYS='demo:[^']+' (\S+) reveal (\S+)", hint)
    assert match is not None, hint
    assert match[1] in (LOGIN_ETL, "login-etl")  # the latter only when it is on PATH
    [[ip]] = lambda_env.query("SELECT masked_ip FROM user_logins WHERE masked_ip = :m", m=match[2])
    assert ip == match[2]
    as_printed = ["bash", "-c", hint]
    env = _without_db(cli_env)
    revealed = subprocess.run(as_printed, env=env, capture_output=True, text=True, check=False)
    assert revealed.returncode == 0, revealed.stderr
    plain = revealed.stdout.strip()
    sent_ips = {json.loads(line).get("ip") for line in exercise_bodies()}
    assert plain in sent_ips


def test_demo_with_synthetic_records_accounts_for_every_one(cli_env: dict[str, str]) -> None:
    result = run_cli(
        "demo", "--synthetic", "120", "--invalid-ratio", "0.1", "--seed", "3", env=_without_db(cli_env)
    )

    assert result.returncode == 0, result.stderr
    from login_etl_cli.synth import generate

    spec = generate(120, seed=3, invalid_ratio=0.1, duplicate_ratio=0.05)
    assert f"inserted={spec.valid}" in result.stdout
    assert f"rejected={sum(spec.rejected.values())}" in result.stdout
    assert "dlq=0 queued=0" in result.stdout


def test_demo_with_a_missing_file_is_a_one_line_error(cli_env: dict[str, str]) -> None:
    result = run_cli("demo", "--file", "/nonexistent/logins.ndjson", env=_without_db(cli_env))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot read /nonexistent/logins.ndjson")
    assert "Traceback" not in result.stderr


# --- reveal -------------------------------------------------------------------------------------
def test_reveal_round_trips_one_line_per_value_in_order(cli_env: dict[str, str], keyring: KeyRing) -> None:
    values = ["199.172.111.135", "593-47-5928", "2001:db8::1"]
    masked = [
        keyring.mask(values[0], AD_IP),
        keyring.mask(values[1], AD_DEVICE_ID),
        keyring.mask(values[2], AD_IP),
    ]

    result = run_cli("reveal", *masked, env=_without_db(cli_env) | {"PII_KEYS": cli_env["PII_KEYS"]})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == [*values, ""]
    [audit, tally] = result.stderr.strip().splitlines()
    assert audit.startswith("audit: {") and '"count": 3' in audit
    assert tally == "reveal: 3 value(s), 3 revealed, 0 failed"
    for value in values:
        assert value not in result.stderr


def test_reveal_of_a_bad_value_prints_an_empty_line_and_exits_1(
    cli_env: dict[str, str], keyring: KeyRing
) -> None:
    good = keyring.mask("10.0.0.1", AD_IP)
    body = keyring.mask('{"ip": "10.0.0.2"}', AD_BODY)  # a body is not a field: must not reveal
    env = _without_db(cli_env) | {"PII_KEYS": cli_env["PII_KEYS"]}

    result = run_cli("reveal", "k1:not-a-value", good, body, "-", env=env, stdin=good + "\n")

    assert result.returncode == 1
    assert result.stdout.split("\n") == ["", "10.0.0.1", "", "10.0.0.1", ""]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert [e.split(":")[1].strip() for e in errors] == ["value 1", "value 3"]
    assert errors[0] == "error: value 1: not a masked value (expected <key id>:<base64url>)"
    assert (
        errors[1] == "error: value 3: the value does not decrypt as an ip or a device_id under the key ring"
    )
    assert "10.0.0." not in result.stderr


def test_reveal_without_keys_is_a_one_line_config_error(cli_env: dict[str, str]) -> None:
    result = run_cli("reveal", "k1:abc", env=_without_db(cli_env))

    assert result.returncode == 2
    assert result.stderr.strip() == "error: PII_KEYS (or PII_KEYS_SECRET_ARN) is not set"
    assert result.stdout == ""


# --- migrate and configuration errors -----------------------------------------------------------
def test_migrate_creates_the_schema_and_is_idempotent(cli_env: dict[str, str], pg_server_url: str) -> None:
    # A database of its own: cli_env's is already migrated by its fixtures.
    raw_db = TestDB(pg_server_url)
    try:
        env = {**_without_db(cli_env), "DATABASE_URL": raw_db.url}  # no PII key needed
        said = []
        for _ in range(2):
            result = run_cli("migrate", env=env)
            assert result.returncode == 0, result.stderr
            said.append(result.stderr.strip())

        assert said == [
            "migrate: created user_logins, user_logins_rejected, user_logins_staging",
            "migrate: the schema was already up to date: nothing to do",
        ]
        assert raw_db.count("user_logins") == 0
        assert raw_db.count("user_logins_rejected") == 0
    finally:
        raw_db.drop()


def test_a_bad_database_url_is_one_line_exit_2_and_never_echoes_the_password(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_URL": "mysql://admin:hunter2@db/logins"}

    for command in (["migrate"], ["rejects"], ["drain", "--queue-url", "http://127.0.0.1:1/1/q"]):
        result = run_cli(*command, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.strip() == "error: DATABASE_URL must start with postgresql://"
        assert "hunter2" not in result.stderr + result.stdout


def test_an_unreachable_database_is_one_line_exit_1(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/db", "DB_CONNECT_TIMEOUT": "1"}

    result = run_cli("migrate", env=env)

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: database connection failed (")
    assert "pw@" not in line


# --- rejects ------------------------------------------------------------------------------------
BAD_VERSION = (
    '{"user_id": "u1", "app_version": "1.2.3.4", "device_type": "ios", '
    '"ip": "10.9.9.9", "locale": null, "device_id": "secret-device-1"}'
)


def test_rejects_lists_reason_detail_and_time_but_never_the_body(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory
) -> None:
    queue = make_queue()
    send_bodies(queue.sqs, queue.url, [BAD_VERSION, "not json"])
    drain(queue.sqs, queue.url)

    result = run_cli("rejects", env=cli_env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "rejected_at\tsent_at\treason\tdetail\tmessage_id"
    assert sorted(line.split("\t")[2] for line in lines[1:]) == ["bad_app_version", "not_json"]
    assert "secret-device-1" not in result.stdout and "10.9.9.9" not in result.stdout
    only = run_cli("rejects", "--reason", "not_json", "--limit", "5", env=cli_env)
    assert [line.split("\t")[2] for line in only.stdout.strip().splitlines()[1:]] == ["not_json"]


def test_replay_resends_the_exact_bodies_and_deletes_them_so_they_are_not_replayed_twice(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory, sqs_endpoint: str
) -> None:
    source, target = make_queue(), make_queue()
    bodies = [BAD_VERSION, "not json", BAD_VERSION.replace("u1", "u2")]
    sent = send_bodies(source.sqs, source.url, bodies)
    drain(source.sqs, source.url)
    assert lambda_env.count("user_logins_rejected") == 3
    where = ["--queue-url", target.url, "--endpoint-url", sqs_endpoint]

    replay = run_cli("rejects", "--replay", "--reason", "bad_app_version", *where, env=cli_env)

    assert replay.returncode == 0, replay.stderr
    assert "replayed=2 failed=0" in replay.stderr
    assert lambda_env.query("SELECT reason FROM user_logins_rejected") == [["not_json"]]
    got = target.sqs.receive_message(
        QueueUrl=target.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    assert sorted(m["Body"] for m in got) == sorted([bodies[0], bodies[2]])
    origins = {m["MessageAttributes"][REPLAY_ATTRIBUTE]["StringValue"] for m in got}
    assert origins == {sent.message_ids[0], sent.message_ids[2]}

    again = run_cli("rejects", "--replay", "--reason", "bad_app_version", *where, env=cli_env)
    assert "replayed=0 failed=0" in again.stderr
    assert target.depth() == 2  # nothing was sent twice


def test_replay_keeps_rows_that_do_not_decrypt_and_exits_1(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory, sqs_endpoint: str
) -> None:
    source, target = make_queue(), make_queue()
    send_bodies(source.sqs, source.url, ["not json"])
    drain(source.sqs, source.url)
    other_key = {**cli_env, "PII_KEYS": "k1:" + "A" * 86}  # a different key with the same id

    result = run_cli(
        "rejects", "--replay", "--queue-url", target.url, "--endpoint-url", sqs_endpoint, env=other_key
    )

    assert result.returncode == 1
    assert "replayed=0 failed=1" in result.stderr
    assert lambda_env.count("user_logins_rejected") == 1
    assert target.depth() == 0


def test_replay_without_a_queue_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = run_cli("rejects", "--replay", env=cli_env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --replay needs --queue-url"
