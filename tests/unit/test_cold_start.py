"""Cold start stays cheap: importing the handler and building its runtime loads no boto3.

boto3 (and a botocore client) cost about 100 ms of import; only a ``*_SECRET_ARN`` configuration
needs them, so they must stay off the path of a ``DATABASE_URL`` + ``PII_KEYS`` container. Each
case runs in a fresh interpreter, since this test process has long imported everything. Nothing
here opens a socket: the runtime connects lazily, and the ARN case fails on a missing region
before boto3 would reach the network. Timing is left to ``make bench`` (shared machines are noisy).
"""

from __future__ import annotations

import base64
import os
import secrets

import pytest
from support.fresh import fresh_json

pytestmark = pytest.mark.timeout(120)

_PROBE = """
import json, sys
import login_etl.handler
runtime = login_etl.handler.get_runtime()
error = None
if sys.argv[1] == "keyring":
    try:
        runtime.keys.keyring()
    except Exception as exc:  # the point is what got imported on the way
        error = type(exc).__name__
print(json.dumps({"boto3": "boto3" in sys.modules,
                  "botocore_client": "botocore.client" in sys.modules,
                  "error": error}))
"""


def _probe(action: str, **env: str) -> dict[str, object]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "DATABASE_URL", "DB_", "PII_", "POWERTOOLS_", "AUTO_MIGRATE"))
    }
    base.update(
        # No region and no config files: any boto3 client creation fails before touching a socket.
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        DATABASE_URL="postgresql://login@/logins?host=/nonexistent-socket-dir",
        AUTO_MIGRATE="false",  # get_runtime would otherwise migrate, i.e. connect
        POWERTOOLS_METRICS_DISABLED="true",
        **env,
    )
    result: dict[str, object] = fresh_json(_PROBE, action, env=base)
    return result


def _key_spec() -> str:
    return "k1:" + base64.b64encode(secrets.token_bytes(64)).decode()


def test_importing_the_handler_and_building_its_runtime_does_not_import_boto3() -> None:
    got = _probe("init", PII_KEYS=_key_spec())
    assert got == {"boto3": False, "botocore_client": False, "error": None}


def test_a_container_with_a_static_key_ring_never_imports_boto3_even_when_masking() -> None:
    got = _probe("keyring", PII_KEYS=_key_spec())
    assert got == {"boto3": False, "botocore_client": False, "error": None}


def test_a_secrets_manager_key_ring_does_import_boto3_when_first_used() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:login-etl-pii-AbCdEf"
    got = _probe("keyring", PII_KEYS_SECRET_ARN=arn)
    assert got["boto3"] is True
    assert got["error"] is not None  # no region configured: it fails, after importing boto3
