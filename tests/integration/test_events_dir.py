"""events/: every sample event, run through the real handler on a real PostgreSQL.

These are the files a user feeds to `sam local invoke`, so each one's outcome is pinned here:
exact rows, exact reject reasons, and the partial-batch response. The generator must also
reproduce them byte for byte, so they cannot drift from lambda_event.py or the exercise data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from login_etl import handler
from login_etl.constants import CONFIG_ENV_VARS
from login_etl.errors import KeyRingError
from login_etl_cli.context import LocalContext
from support.sample_events import EVENTS, EXPECTED, event_files

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "make_events.py"
SENT_DATE = date(2023, 11, 14)  # every sample record's SentTimestamp is on this UTC day


def load(stem: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{stem}.json").read_text("utf-8"))
    return event


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(p.stem for p in event_files()) == sorted(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_event_file_gives_exact_rows_rejects_and_response(
    stem: str, invoke_handler: Any, db: Any, logs: Any
) -> None:
    event = load(stem)
    inserted, rejected = EXPECTED[stem]
    ids = [r["messageId"] for r in event["Records"]]

    response = invoke_handler(event)

    assert response == {"batchItemFailures": []}
    assert db.count("user_logins") == inserted
    reasons = dict(db.query("SELECT reason, count(*) FROM user_logins_rejected GROUP BY reason"))
    assert reasons == rejected
    stored = {row[0] for row in db.query("SELECT message_id FROM user_logins")}
    stored |= {row[0] for row in db.query("SELECT message_id FROM user_logins_rejected")}
    assert stored == set(ids)  # every record landed somewhere, under its own id
    dates = {row[0] for row in db.query("SELECT DISTINCT create_date FROM user_logins")}
    assert dates == {SENT_DATE}  # from SentTimestamp, not from the day the test runs
    (summary,) = logs.summaries()
    assert summary["received"] == len(ids)
    assert summary["inserted"] == inserted
    assert summary["rejected"] == sum(rejected.values())
    assert summary["duplicates"] == summary["failed"] == 0


def test_mixed_batch_after_valid_batch_counts_the_redelivery_as_a_duplicate(
    invoke_handler: Any, db: Any, logs: Any
) -> None:
    assert invoke_handler(load("valid_batch")) == {"batchItemFailures": []}
    logs.clear()

    assert invoke_handler(load("mixed_batch")) == {"batchItemFailures": []}

    (summary,) = logs.summaries()
    assert (summary["inserted"], summary["duplicates"], summary["rejected"]) == (3, 1, 5)
    assert db.count("user_logins") == 13


def test_replaying_every_event_adds_nothing(invoke_handler: Any, db: Any) -> None:
    for path in event_files():
        invoke_handler(load(path.stem))
    rows = db.count("user_logins"), db.count("user_logins_rejected")
    for path in event_files():
        assert invoke_handler(load(path.stem)) == {"batchItemFailures": []}
    assert (db.count("user_logins"), db.count("user_logins_rejected")) == rows


def test_fifo_batch_is_a_fifo_event() -> None:
    records = load("fifo_batch")["Records"]
    assert all(r["eventSourceARN"].endswith(".fifo") for r in records)
    assert {r["attributes"]["MessageGroupId"] for r in records} == {"user-0", "user-1"}


def test_mixed_batch_holds_a_redelivery_of_valid_batchs_first_record() -> None:
    first = load("valid_batch")["Records"][0]
    again = [r for r in load("mixed_batch")["Records"] if r["messageId"] == first["messageId"]]
    assert len(again) == 1
    assert again[0]["body"] == first["body"]
    assert again[0]["attributes"]["SentTimestamp"] == first["attributes"]["SentTimestamp"]
    assert int(again[0]["attributes"]["ApproximateReceiveCount"]) > 1


# --- the env file for `sam local invoke --env-vars` ---------------------------------------------


def test_env_json_sets_every_variable_the_code_reads() -> None:
    env = json.loads((EVENTS / "env.json").read_text("utf-8"))
    assert set(env) == {"LoginEtlFunction"}  # template.yaml's logical id
    assert set(CONFIG_ENV_VARS) <= set(env["LoginEtlFunction"])


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_env_json_holds_no_usable_key(db: Any, monkeypatch: pytest.MonkeyPatch, logs: Any) -> None:
    values = json.loads((EVENTS / "env.json").read_text("utf-8"))["LoginEtlFunction"]
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", db.url)  # the compose host is not reachable from here
    handler.reset()
    try:
        with pytest.raises(KeyRingError, match="PII"):
            handler.lambda_handler(load("valid_batch"), LocalContext())
    finally:
        handler.reset()
    assert db.count("user_logins") == 0
    assert "REPLACE_ME" not in logs.text()  # the error names the variable, not its value


def test_env_local_uses_the_callers_keys(tmp_path: Path) -> None:
    out = tmp_path / "env.local.json"
    spec = "k7:" + "A" * 86 + "=="
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "env-local", "--out", str(out)],
        env={"PII_KEYS": spec, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert spec not in result.stdout  # the caller's own key is never echoed
    assert json.loads(out.read_text())["LoginEtlFunction"]["PII_KEYS"] == spec
    assert out.stat().st_mode & 0o077 == 0


def test_env_local_generates_and_prints_an_ephemeral_key(tmp_path: Path) -> None:
    out = tmp_path / "env.local.json"
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "env-local", "--out", str(out)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    keys = json.loads(out.read_text())["LoginEtlFunction"]["PII_KEYS"]
    assert keys.startswith("k1:")
    assert f"PII_KEYS={keys}" in result.stdout.splitlines()
    from login_etl.pii import KeyRing

    KeyRing.from_spec(keys)  # a usable 64-byte key


def test_env_local_is_gitignored() -> None:
    result = subprocess.run(["git", "check-ignore", "-q", "events/env.local.json"], cwd=ROOT, check=False)
    assert result.returncode == 0


# --- the generator ------------------------------------------------------------------------------


def test_generator_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    generated = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in EVENTS.glob("*.json") if p.name != "env.local.json")
    assert generated == committed
    for name in generated:
        assert (tmp_path / name).read_bytes() == (EVENTS / name).read_bytes(), (
            f"events/{name} is stale: run `python scripts/make_events.py`"
        )


# --- the built package (slow: installs aws-sam-cli into its cached venv and runs `sam build`) -------

# Calls the handler of the built package the way the Lambda runtime does, one event per file.
_RUNTIME_SHIM = """
import json, sys
from login_etl.handler import lambda_handler

class Context:
    function_name = "login-etl"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:login-etl"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self):
        return 30_000

for path in sys.argv[1:]:
    print("RESPONSE", json.dumps(lambda_handler(json.load(open(path)), Context())), file=sys.stderr)
"""


def _python312() -> str | None:
    """A working python3.12 (the Lambda runtime's version), which `sam build` needs on PATH."""
    candidates = [
        shutil.which("python3.12"),
        *sorted((Path.home() / ".pyenv" / "versions").glob("3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run([str(candidate), "--version"], check=False, capture_output=True)
        if probe.returncode == 0:  # a pyenv shim exists even when 3.12 is not selected
            return str(candidate)
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_make_validate_and_build_then_the_built_package_handles_every_event(db: Any, key_spec: str) -> None:
    """What `make validate`, `make build` and `sam local invoke` do, minus Docker: the package
    `sam build` produced, run by python3.12 with env.json's settings, on every sample event."""
    python312 = _python312()
    if python312 is None:
        pytest.skip("sam build needs python3.12 on PATH")
    path = f"{Path(python312).parent}:{os.environ['PATH']}"
    for target in ("validate", "build"):
        subprocess.run(["make", target], cwd=ROOT, env={**os.environ, "PATH": path}, check=True)
    env = json.loads((EVENTS / "env.json").read_text("utf-8"))["LoginEtlFunction"]
    env |= {"DATABASE_URL": db.url, "PII_KEYS": key_spec, "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / ".aws-sam" / "build" / "LoginEtlFunction")}
    files = [str(p) for p in event_files()]

    result = subprocess.run(
        [python312, "-s", "-c", _RUNTIME_SHIM, *files],
        env=env,
        cwd="/tmp",
        capture_output=True,
        text=True,
        check=True,
    )

    prefix = "RESPONSE "
    responses = [
        json.loads(x.removeprefix(prefix)) for x in result.stderr.splitlines() if x.startswith(prefix)
    ]
    assert responses == [{"batchItemFailures": []}] * len(files)
    total_rows = sum(rows for rows, _ in EXPECTED.values()) - 1  # mixed_batch redelivers one
    assert db.count("user_logins") == total_rows
    assert db.count("user_logins_rejected") == sum(sum(r.values()) for _, r in EXPECTED.values())


# --- make env-local refuses to lose a key, and refuses a key the function would refuse ---------
def _env_local(out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "env-local", "--out", str(out), *extra],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_env_local_never_replaces_an_existing_file_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "env.local.json"
    assert _env_local(out, {}).returncode == 0
    first = out.read_bytes()

    refused = _env_local(out, {})
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith(f"error: {out} exists, and its key may be the only copy")
    assert "FORCE=1" in refused.stderr
    assert out.read_bytes() == first, "the only copy of the key is kept"

    forced = _env_local(out, {}, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() != first


GARBAGE_KEYS = [
    "REPLACE_ME",  # no key id
    "k1:not-base64!",
    "k1:" + "QUFB" * 4,  # 12 bytes
    "k1:" + "A" * 40,  # 30 bytes
    "k1:" + "A" * 86 + "==,k1:" + "B" * 86 + "==",  # the same id twice
    "AAAA" * 21 + "AA==:k1",  # id and key swapped
]


@pytest.mark.parametrize("keys", GARBAGE_KEYS)
def test_env_local_refuses_a_key_the_function_would_refuse_without_echoing_it(
    tmp_path: Path, keys: str
) -> None:
    out = tmp_path / "env.local.json"

    refused = _env_local(out, {"PII_KEYS": keys})

    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: PII_KEYS is not a usable key ring: ")
    for part in keys.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in refused.stderr + refused.stdout
    assert not out.exists()


def test_make_env_local_passes_force_through() -> None:
    plain = subprocess.run(["make", "-n", "env-local"], cwd=ROOT, capture_output=True, text=True, check=True)
    forced = subprocess.run(
        ["make", "-n", "env-local", "FORCE=1"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "scripts/make_events.py env-local" in plain.stdout and "--force" not in plain.stdout
    assert "scripts/make_events.py env-local --force" in forced.stdout
