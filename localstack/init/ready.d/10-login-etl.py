"""LocalStack ready hook: creates what the login-etl stack reads but does not own.

LocalStack runs it once it accepts requests, with its own Python (``exec``), in the docker
compose container and in the Docker-less host mode (scripts/localstack_host.py) alike:

- login-etl/db         the database, in the RDS secret JSON shape: the compose Postgres
                       (postgres:5432) unless LOGIN_ETL_DB_HOST / _PORT / _NAME / _USER /
                       _PASSWORD say otherwise (host mode and the LocalStack test tier);
- login-etl/pii-keys   the PII key ring {"active": ..., "keys": {...}}: $LOGIN_ETL_PII_KEYS
                       (id:base64[,id:base64]) when given, else a fresh random 64-byte key;
- s3://login-etl-sam-artifacts, where `samlocal deploy` uploads the function.

Idempotent: an existing secret is left alone, so a key ring survives a re-run of the hook. A
key never goes to a log line.
"""

import base64
import json
import os

from localstack.aws.connect import connect_to

REGION = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
BUCKET = "login-etl-sam-artifacts"
DB_SECRET = "login-etl/db"
PII_SECRET = "login-etl/pii-keys"
clients = connect_to(region_name=REGION)


def ensure_secret(name, description, value):
    """Create the secret unless it exists; True when created."""
    try:
        clients.secretsmanager.describe_secret(SecretId=name)
        return False
    except clients.secretsmanager.exceptions.ResourceNotFoundException:
        secret = json.dumps(value)
        clients.secretsmanager.create_secret(Name=name, Description=description, SecretString=secret)
        return True


# The defaults are the docker-compose Postgres service (its name on the compose network).
db = {
    "engine": "postgres",
    "host": os.environ.get("LOGIN_ETL_DB_HOST") or "postgres",
    "port": int(os.environ.get("LOGIN_ETL_DB_PORT") or 5432),
    "dbname": os.environ.get("LOGIN_ETL_DB_NAME") or "login_etl",
    "username": os.environ.get("LOGIN_ETL_DB_USER") or "login_etl",
    "password": os.environ.get("LOGIN_ETL_DB_PASSWORD") or "login_etl",  # a throwaway local one
}
if ensure_secret(DB_SECRET, "login-etl: the local Postgres (local only)", db):
    print(f"login-etl: created secret {DB_SECRET} ({db['host']}:{db['port']}/{db['dbname']})")

spec = os.environ.get("LOGIN_ETL_PII_KEYS", "").strip()
if spec:
    keys = dict(item.split(":", 1) for item in spec.split(","))
    active = os.environ.get("PII_ACTIVE_KEY_ID") or next(iter(keys))
else:
    keys = {"k1": base64.b64encode(os.urandom(64)).decode()}
    active = "k1"
# The function's secret holds the active key only: it never decrypts (docs/security.md).
if ensure_secret(
    PII_SECRET, "login-etl: PII key ring (local only)", {"active": active, "keys": {active: keys[active]}}
):
    origin = "from PII_KEYS" if spec else "with a fresh ephemeral key (get-secret-value shows it)"
    print(f"login-etl: created secret {PII_SECRET} {origin}")

try:
    clients.s3.head_bucket(Bucket=BUCKET)
except Exception:  # noqa: BLE001 - any miss means: create it
    clients.s3.create_bucket(Bucket=BUCKET)
print(f"login-etl: LocalStack is ready (secrets {DB_SECRET}, {PII_SECRET}; bucket {BUCKET})")
