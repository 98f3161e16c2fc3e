"""The LocalStack tier: the stack deployed with the README's command into a real LocalStack.

`make test-localstack` runs it (and `make test`): LocalStack 4.14.0 on this host, bound to a free
127.0.0.1 port (scripts/localstack_host.py), a real PostgreSQL on 127.0.0.1 for the function,
`make deploy-localstack` against it, and the function run by LocalStack's own SQS event source
mapping through localstack/host-executor. Everything started here is stopped by PID at the end of
the session, also when a test fails.

A missing piece (python3.13 or python3.12, the SAM CLI's emulator, pgserver's PostgreSQL) is a
loud skip naming it, or a failure under LOGIN_ETL_REQUIRE_AWS_LOCAL=1 (.ci/run sets it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import pytest
from support.pg import connect
from support.pgcluster import LocalCluster, free_port, pgserver_bin

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

REPO = Path(__file__).resolve().parents[2]
STACK = "login-etl"  # samconfig.toml [localstack] stack_name

# Only `make test-localstack` prepares what this tier needs (the SAM CLI venv, its emulator), so
# the plain pytest run of `make test` leaves every file of the tier to it.
collect_ignore_glob = [] if os.environ.get("LOGIN_ETL_LOCALSTACK_TIER") == "1" else ["test_*.py"]


def _host_module() -> Any:
    spec = importlib.util.spec_from_file_location("localstack_host", REPO / "scripts" / "localstack_host.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


host = _host_module()


def _unavailable(what: str) -> None:
    if os.environ.get("LOGIN_ETL_REQUIRE_AWS_LOCAL") == "1":
        pytest.fail(f"LOGIN_ETL_REQUIRE_AWS_LOCAL=1 but the LocalStack tier cannot run: {what}")
    pytest.skip(f"LocalStack tier skipped: {what}")


def run_make(target: str, url: str) -> str:
    """`make <target>` as the README prints it, pointed at this LocalStack; its output."""
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"LOCALSTACK_URL={url}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = done.stdout + done.stderr
    quiet = "\n".join(line for line in output.splitlines() if "Uploading to" not in line)
    assert done.returncode == 0, quiet[-4000:]
    return output


@dataclass
class Tier:
    url: str
    cluster: LocalCluster
    database: str
    outputs: dict[str, str]
    deploy_output: str = field(repr=False)

    @overload
    def client(self, service: Literal["cloudwatch"]) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: str) -> Any: ...
    def client(self, service: str) -> Any:
        """A client of the tier's LocalStack, typed for the services whose stubs the dev lock has."""
        make: Callable[..., Any] = boto3.client  # the stubs type one client per literal service name
        return make(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def db_url(self) -> str:
        return self.cluster.url(self.database)

    def count(self, table: str) -> int:
        """Rows in table; -1 before the function's first cold start has migrated the schema."""
        conn = connect(self.db_url())
        try:
            if conn.run("SELECT to_regclass(:t)", t=table)[0][0] is None:
                return -1
            return int(conn.run(f"SELECT count(*) FROM {table}")[0][0])
        finally:
            conn.close()


@pytest.fixture(scope="session")
def tier() -> Iterator[Tier]:
    rie = Path(os.environ.get("LOGIN_ETL_RIE", ""))
    if not rie.is_file():
        _unavailable(f"no Runtime Interface Emulator at {str(rie)!r} (LOGIN_ETL_RIE, from aws-sam-cli)")
    for version in ("3.13", host.LAMBDA_RUNTIME):
        if host.find_python(version) is None:
            _unavailable(f"no python{version} (on PATH or in pyenv)")
    bin_dir = pgserver_bin()
    if bin_dir is None:
        _unavailable("no PostgreSQL binaries (the pgserver wheel of the dev extras)")
    assert bin_dir is not None

    password = secrets.token_urlsafe(16)
    cluster = LocalCluster(bin_dir, password=password)
    state = Path(tempfile.mkdtemp(prefix="login-etl-localstack-"))
    process = None
    try:
        cluster.start()
        admin = connect(cluster.url())
        admin.run('CREATE DATABASE "login_etl"')
        admin.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        hook_env = {
            "LOGIN_ETL_DB_HOST": "127.0.0.1",
            "LOGIN_ETL_DB_PORT": str(cluster.port),
            "LOGIN_ETL_DB_USER": "postgres",
            "LOGIN_ETL_DB_PASSWORD": password,
            "LOGIN_ETL_DB_NAME": "login_etl",
            # After a failed batch LocalStack's poller backs off 2, 4, 8 ... up to 60 s; the outage
            # test needs a dozen failed polls, so its backoff is capped at 4 s here (test only).
            "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_ERROR_SEC": "4",
        }
        process = host.start(rie, port, state, hook_env)
        output = run_make("deploy-localstack", url)
        tier = Tier(url, cluster, "login_etl", {}, output)
        (stack,) = tier.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
        tier.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        tier.outputs["_status"] = stack["StackStatus"]
        yield tier
    finally:
        if process is not None:
            left = host.stop(process.pid)
            assert not left, f"LocalStack processes left running: {left}"
        cluster.destroy()
        # Kept for a post-mortem: LocalStack's own log of the last run (poller, Lambda, CFN).
        with contextlib.suppress(OSError):
            shutil.copy(state / "localstack.log", host.cache_dir() / "last-test-run.log")
        shutil.rmtree(state, ignore_errors=True)
