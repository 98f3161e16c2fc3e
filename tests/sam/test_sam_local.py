"""The real SAM CLI, as the README tells users to run it, on a real container engine.

`sam build` (the session fixture), then `sam local invoke -e events/<file>` with an env-vars file
for every sample event, and `sam local start-lambda` answering an SDK invoke. Each run's response,
rows and rejects are read back from PostgreSQL: the function ran in a container built from the
stand-in base image, reached the database over the engine's bridge, and migrated it itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.pg import TestDB
from support.sample_events import EXPECTED, event_files

from sam.conftest import REPO, Tier
from sam.harness import last_json_line, stop_pid

START_LAMBDA_PORT = 3001


def batch_summaries(log: str) -> list[dict[str, Any]]:
    """The function's `batch summary` lines, which SAM CLI forwards from the container to stderr."""
    found = []
    for line in log.splitlines():
        if '"batch summary"' in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


def assert_landed(db: TestDB, stem: str, event: dict[str, Any]) -> None:
    inserted, rejected = EXPECTED[stem]
    assert db.count("user_logins") == inserted
    reasons = dict(db.query("SELECT reason, count(*) FROM user_logins_rejected GROUP BY reason"))
    assert reasons == rejected
    stored = {row[0] for row in db.query("SELECT message_id FROM user_logins")}
    stored |= {row[0] for row in db.query("SELECT message_id FROM user_logins_rejected")}
    assert stored == {r["messageId"] for r in event["Records"]}


@pytest.mark.timeout(900)  # the first one also pays for the session: image, engine, sam build
@pytest.mark.parametrize("event_file", event_files(), ids=lambda p: p.stem)
def test_sam_local_invoke_on_each_event_file(event_file: Path, tier: Tier, database: TestDB) -> None:
    event = json.loads(event_file.read_text("utf-8"))
    inserted, rejected = EXPECTED[event_file.stem]  # a new file without an expectation fails here
    env_file = tier.env_file(database)

    result = tier.sam(
        "local",
        "invoke",
        "LoginEtlFunction",
        "--config-env",
        "default",
        "--event",
        str(event_file.relative_to(REPO)),
        "--env-vars",
        str(env_file),
        "--skip-pull-image",
    )

    assert result.returncode == 0, result.stderr[-4000:]
    assert last_json_line(result.stdout) == {"batchItemFailures": []}
    assert_landed(database, event_file.stem, event)
    (summary,) = batch_summaries(result.stderr)
    assert (summary["received"], summary["inserted"]) == (len(event["Records"]), inserted)
    assert (summary["rejected"], summary["duplicates"], summary["failed"]) == (sum(rejected.values()), 0, 0)
    assert tier.key_spec.split(":", 1)[1] not in result.stdout + result.stderr


# Run inside the namespace, where start-lambda listens: an SDK invoke, as a user's code does it.
_SDK_INVOKE = """
import json, sys, time
import boto3, botocore.config, botocore.exceptions
url, path = sys.argv[1:]
client = boto3.client(
    "lambda", endpoint_url=url, region_name="us-east-1",
    aws_access_key_id="local", aws_secret_access_key="local",
    config=botocore.config.Config(read_timeout=300, retries={"max_attempts": 0}),
)
deadline = time.monotonic() + 120
while True:
    try:
        response = client.invoke(FunctionName="LoginEtlFunction", Payload=open(path, "rb").read())
        break
    except botocore.exceptions.EndpointConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
print(json.dumps({"status": response["StatusCode"], "error": response.get("FunctionError"),
                  "payload": json.loads(response["Payload"].read())}))
"""


@pytest.mark.timeout(600)
def test_start_lambda_serves_an_sdk_invoke_and_stops_on_sigterm(tier: Tier, database: TestDB) -> None:
    event_file = REPO / "events" / "valid_batch.json"
    argv = tier.sam_argv(
        "local",
        "start-lambda",
        "--config-env",
        "default",
        "--env-vars",
        str(tier.env_file(database)),
        "--docker-network",
        "login-etl",
        "--skip-pull-image",
        "--host",
        "127.0.0.1",
        "--port",
        str(START_LAMBDA_PORT),
    )
    log = tier.workdir / "start-lambda.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, cwd=REPO, env=tier.sam_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{START_LAMBDA_PORT}"
        sdk = subprocess.run(
            tier.ns.enter([sys.executable, "-c", _SDK_INVOKE, url, str(event_file)]),
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
        assert sdk.returncode == 0, sdk.stderr[-3000:] + log.read_text()[-3000:]
        assert json.loads(sdk.stdout) == {"status": 200, "error": None, "payload": {"batchItemFailures": []}}
        assert_landed(database, "valid_batch", json.loads(event_file.read_text("utf-8")))

        server.send_signal(signal.SIGTERM)  # start-lambda ignores the first SIGINT
        assert server.wait(60) is not None
    finally:
        stop_pid(server)
    (summary,) = batch_summaries(log.read_text())
    assert summary["inserted"] == EXPECTED["valid_batch"][0]
