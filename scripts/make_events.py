"""Generate events/: the sample Lambda SQS events and the env file for `sam local invoke`.

    python scripts/make_events.py [--out events]        # regenerate the committed files
    python scripts/make_events.py env-local [--out F] [--force]   # a gitignored env file with a usable key

The events are built with ``login_etl_cli.lambda_event`` (the same code the local runner uses)
from ``data/exercise_logins.ndjson``, with fixed message ids and timestamps, so a re-run
reproduces the committed files byte for byte (tests/integration/test_events_dir.py checks it).

The committed ``env.json`` holds no usable key ("no default keys"): its PII_KEYS is a
placeholder the function rejects at startup. ``env-local`` writes ``events/env.local.json``
(gitignored) with the caller's ``PII_KEYS``, or with a fresh ephemeral key that it prints once.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from login_etl.constants import CONFIG_ENV_VARS
from login_etl.types import SQSEvent, SQSRecord
from login_etl_cli.lambda_event import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    make_event,
    make_record,
)

ROOT: Final = Path(__file__).resolve().parent.parent
DATA: Final = ROOT / "data" / "exercise_logins.ndjson"
EVENTS_DIR: Final = ROOT / "events"
FUNCTION_ID: Final = "LoginEtlFunction"  # template.yaml's logical id; env files are keyed by it

# 2023-11-14T22:13:20Z: every record's SentTimestamp, hence its create_date, is fixed.
BASE_MS: Final = 1_700_000_000_000
_NAMESPACE: Final = uuid.UUID("6f1c9a52-3d0e-4b8e-9a57-0c2d61e4f0a1")
FIFO_QUEUE_ARN: Final = f"arn:aws:sqs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:login-etl-logins.fifo"
SNS_TOPIC_ARN: Final = f"arn:aws:sns:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:user-logins"

#: The committed env file's PII_KEYS. Not base64 of 32 or 64 bytes under any alphabet, so
#: login_etl refuses to start with it, and says which variable is wrong.
PLACEHOLDER_PII_KEYS: Final = "k1:REPLACE_ME_run_make_env_local"
#: The compose Postgres, as seen from a container on the compose network (`login-etl`).
COMPOSE_DATABASE_URL: Final = "postgresql://login_etl:login_etl@postgres:5432/login_etl"


def message_id(event: str, index: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event}/{index}"))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sns_notification(login_body: str, *, index: int, sent_ms: int) -> str:
    """The body SNS delivers to an SQS subscription without raw message delivery."""
    notification = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid5(_NAMESPACE, f"sns/{index}")),
        "TopicArn": SNS_TOPIC_ARN,
        "Message": login_body,
        "Timestamp": iso(sent_ms - 5),
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+/example+signature==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={SNS_TOPIC_ARN}:0b9c4f2e-example"
        ),
    }
    return json.dumps(notification)


def eventbridge_event(detail: Any, *, index: int, sent_ms: int) -> str:
    """The body an EventBridge rule with an SQS target delivers (the whole event)."""
    event = {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, f"eventbridge/{index}")),
        "detail-type": "UserLogin",
        "source": "com.example.login-app",
        "account": DEFAULT_ACCOUNT,
        "time": iso(sent_ms - 5)[:-5] + "Z",
        "region": DEFAULT_REGION,
        "resources": [],
        "detail": detail,
    }
    return json.dumps(event)


def build_events(bodies: list[str]) -> dict[str, SQSEvent]:
    """Every sample event by file stem. ``bodies`` are the exercise lines, verbatim."""
    logins = [b for b in bodies if "user_id" in json.loads(b)]
    malformed = next(b for b in bodies if "user_id" not in json.loads(b))
    events: dict[str, SQSEvent] = {}

    def record(name: str, i: int, body: str, offset_s: int, **kwargs: Any) -> SQSRecord:
        return make_record(
            body,
            message_id=message_id(name, i),
            sent_timestamp_ms=BASE_MS + offset_s * 1000 + i * 1000,
            **kwargs,
        )

    # 1. Ten valid logins: all inserted.
    valid = [record("valid_batch", i, body, 0) for i, body in enumerate(logins[0:10])]
    events["valid_batch"] = make_event(valid)

    # 2. Valid, malformed and redelivered records together.
    bad_ip = json.loads(logins[13])
    bad_ip["ip"] = "256.1.1.1"
    bad_version = json.loads(logins[14])
    bad_version["app_version"] = "two.zero"
    mixed_bodies = [
        logins[10],
        malformed,  # the exercise's malformed line: missing_field
        logins[11],
        "this is not JSON",  # not_json
        '["a", "list"]',  # not_object
        json.dumps(bad_ip),  # bad_ip
        logins[12],
        json.dumps(bad_version),  # bad_app_version
    ]
    mixed = [record("mixed_batch", i, body, 60) for i, body in enumerate(mixed_bodies)]
    # A redelivery of valid_batch's first record: same message id, body and SentTimestamp, a
    # higher receive count. After valid_batch it is a duplicate; on its own it is new.
    first = valid[0]
    mixed.append(
        make_record(
            first["body"],
            message_id=first["messageId"],
            sent_timestamp_ms=int(first["attributes"]["SentTimestamp"]),
            receive_count=3,
        )
    )
    events["mixed_batch"] = make_event(mixed)

    # 3. SNS -> SQS without raw delivery: three logins, and one Message that is not JSON.
    sns_bodies = [logins[15], logins[16], logins[17], "not JSON either"]
    sns = []
    for i, login in enumerate(sns_bodies):
        sent = BASE_MS + 120_000 + i * 1000
        body = sns_notification(login, index=i, sent_ms=sent)
        sns.append(record("sns_envelope", i, body, 120))
    events["sns_envelope"] = make_event(sns)

    # 4. EventBridge -> SQS: three logins, and one event whose detail is not an object.
    details: list[Any] = [json.loads(b) for b in logins[18:21]] + [42]
    eventbridge = []
    for i, detail in enumerate(details):
        sent = BASE_MS + 180_000 + i * 1000
        body = eventbridge_event(detail, index=i, sent_ms=sent)
        eventbridge.append(record("eventbridge_envelope", i, body, 180))
    events["eventbridge_envelope"] = make_event(eventbridge)

    # 5. A FIFO queue: two message groups (one per user), three logins each, in order.
    fifo = []
    for i, body in enumerate(logins[21:27]):
        fifo.append(
            record(
                "fifo_batch",
                i,
                body,
                240,
                queue_arn=FIFO_QUEUE_ARN,
                group_id=f"user-{i % 2}",
                sequence_number=f"{18_849_496_460_467_696_128 + i}",
            )
        )
    events["fifo_batch"] = make_event(fifo)
    return events


def env_file(pii_keys: str, database_url: str = COMPOSE_DATABASE_URL) -> dict[str, dict[str, str]]:
    """The ``sam local invoke --env-vars`` file: a value for every variable the code reads."""
    values = {
        "DATABASE_URL": database_url,
        "DB_SECRET_ARN": "",
        "DB_SSLMODE": "disable",
        "DB_SSLROOTCERT": "",
        "DB_CONNECT_TIMEOUT": "5",
        "DB_STATEMENT_TIMEOUT_MS": "10000",
        "DB_IAM_AUTH": "false",
        "PII_KEYS": pii_keys,
        "PII_ACTIVE_KEY_ID": "",
        "PII_KEYS_SECRET_ARN": "",
        "SECRETS_MAX_AGE": "300",
        "AUTO_MIGRATE": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    missing = set(CONFIG_ENV_VARS) - set(values)
    if missing:  # a new variable in constants.py must get a local value here
        raise SystemExit(f"make_events.py: no local value for {sorted(missing)}")
    return {FUNCTION_ID: values}


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_events(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    bodies = DATA.read_text("utf-8").splitlines()
    for stem, event in build_events(bodies).items():
        path = out / f"{stem}.json"
        path.write_text(dumps(event), "utf-8")
        written.append(path)
    path = out / "env.json"
    path.write_text(dumps(env_file(PLACEHOLDER_PII_KEYS)), "utf-8")
    written.append(path)
    return written


class EnvLocalError(Exception):
    """A refusal of ``env-local``, printed as one ``error:`` line (never a key)."""


def write_env_local(
    out: Path, environ: dict[str, str], say: Callable[[str], None] = print, *, force: bool = False
) -> Path:
    """Write the gitignored env file, with $PII_KEYS or a fresh ephemeral key (printed once).

    An existing file is kept unless ``force``: its key may be the only copy, and what it masked
    can only be revealed with it. A ``PII_KEYS`` the function would refuse is refused here, in
    the function's own words, rather than at the first ``sam local invoke``.
    """
    if out.exists() and not force:
        raise EnvLocalError(
            f"{out} exists, and its key may be the only copy: keep it, or replace it with "
            "`make env-local FORCE=1` (scripts/make_events.py env-local --force)"
        )
    keys = environ.get("PII_KEYS", "").strip()
    if keys:
        from login_etl.errors import ConfigError
        from login_etl.pii import KeyRing

        try:
            KeyRing.from_spec(keys, environ.get("PII_ACTIVE_KEY_ID", "").strip() or None)
        except ConfigError:
            # Not the parser's message: whatever it quotes, a key must never reach the terminal.
            raise EnvLocalError(
                "PII_KEYS is not a usable key ring: expected id:base64key[,id:base64key...] with "
                "distinct ids and keys of 32 or 64 random bytes (64 recommended)"
            ) from None
    else:
        keys = "k1:" + base64.b64encode(secrets.token_bytes(64)).decode("ascii")
        say("No PII_KEYS in the environment: generated an ephemeral key ring for local use.")
        say(f"Keep it to reveal what you mask with it; it is stored nowhere else but {out}:")
        say(f"PII_KEYS={keys}")
    database_url = environ.get("LOCAL_INVOKE_DATABASE_URL", "").strip() or COMPOSE_DATABASE_URL
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(dumps(env_file(keys, database_url)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--out", type=Path, default=EVENTS_DIR, help="output directory")
    env_local = sub.add_parser("env-local", help="write events/env.local.json with a usable key")
    env_local.add_argument("--out", type=Path, default=EVENTS_DIR / "env.local.json")
    env_local.add_argument("--force", action="store_true", help="replace an existing file (and its key)")
    args = parser.parse_args(argv)
    if args.command == "env-local":
        try:
            path = write_env_local(args.out, dict(os.environ), force=args.force)
        except EnvLocalError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {path} (mode 600, gitignored)")
        return 0
    for path in write_events(args.out):
        print(f"wrote {path.relative_to(args.out.parent) if args.out.is_absolute() else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
