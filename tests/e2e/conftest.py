"""End-to-end fixtures: fresh queues on the session's real SQS API (moto server), the real
PostgreSQL, and the ``login-etl`` console script run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from login_etl import handler
from login_etl_cli.aws import create_queue_with_dlq, queue_depth
from support.pg import TestDB
from support.proxy import FaultProxy, target_of

#: The console script installed by the project (``pyproject``: login-etl = login_etl_cli.main:main).
LOGIN_ETL = str(Path(sys.executable).with_name("login-etl"))


@dataclass
class Queue:
    """A fresh queue and its DLQ; ``depth()``/``dlq_depth()`` count visible + in flight."""

    sqs: Any
    url: str
    dlq_url: str

    def depth(self) -> int:
        return sum(queue_depth(self.sqs, self.url))

    def dlq_depth(self) -> int:
        return sum(queue_depth(self.sqs, self.dlq_url))


@pytest.fixture
def sqs(sqs_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")


QueueFactory = Callable[..., Queue]


@pytest.fixture
def make_queue(sqs: Any) -> QueueFactory:
    """``make_queue(visibility_s=, max_receive=, fifo=)``: never reuse or purge a queue."""

    def make(*, visibility_s: int = 30, max_receive: int = 5, fifo: bool = False) -> Queue:
        url, dlq_url = create_queue_with_dlq(
            sqs,
            f"e2e-{uuid.uuid4().hex[:12]}",
            visibility_timeout_s=visibility_s,
            max_receive_count=max_receive,
            fifo=fifo,
        )
        return Queue(sqs, url, dlq_url)

    return make


@pytest.fixture
def cli_env(lambda_env: TestDB, key_spec: str, sqs_endpoint: str) -> dict[str, str]:
    """The environment a user would export to run ``login-etl`` against ``lambda_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PII_", "POWERTOOLS_"))}
    env.update(
        DATABASE_URL=lambda_env.url,
        PII_KEYS=key_spec,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        # reveal and replay ask STS who the caller is when credentials are present: ask moto.
        AWS_ENDPOINT_URL_STS=sqs_endpoint,
    )
    return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script. On timeout it gets SIGTERM first, as a user's ``kill`` would, so
    it stops what it started (subprocess.run's SIGKILL would orphan an embedded PostgreSQL)."""
    argv = [LOGIN_ETL, *args]
    with subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def proxied_url(db: TestDB, proxy: FaultProxy) -> str:
    return proxy.url_for(urlsplit(db.url).username or "postgres", db.name)


@pytest.fixture
def proxied_env(lambda_env: TestDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestDB, FaultProxy]]:
    """``DATABASE_URL`` through a fault proxy, so the test decides when the database is down."""
    proxy = FaultProxy(target_of(lambda_env.url))
    monkeypatch.setenv("DATABASE_URL", proxied_url(lambda_env, proxy))
    handler.reset()
    yield lambda_env, proxy
    handler.reset()
    proxy.close()
