#!/usr/bin/env bash
# LocalStack ready hook (runs inside the LocalStack container, once it accepts requests).
# Creates what the login-etl stack reads but does not own:
#   - login-etl/db         the compose Postgres, in the RDS secret JSON shape;
#   - login-etl/pii-keys   the PII key ring {"active": ..., "keys": {...}}: $LOGIN_ETL_PII_KEYS
#                          (id:base64[,id:base64]) when given, else a fresh random 64-byte key;
#   - s3://login-etl-sam-artifacts, where `samlocal deploy` uploads the function.
# Idempotent: an existing secret is left alone, so a key ring survives a re-run of the hook.
set -euo pipefail

REGION="${AWS_DEFAULT_REGION:-us-east-1}"
BUCKET=login-etl-sam-artifacts

secret_exists() {
  awslocal --region "$REGION" secretsmanager describe-secret --secret-id "$1" >/dev/null 2>&1
}

if ! secret_exists login-etl/db; then
  awslocal --region "$REGION" secretsmanager create-secret --name login-etl/db \
    --description "login-etl: the docker-compose Postgres (local only)" \
    --secret-string '{"engine": "postgres", "host": "postgres", "port": 5432, "dbname": "login_etl", "username": "login_etl", "password": "login_etl"}' \
    >/dev/null
  echo "login-etl: created secret login-etl/db"
fi

if ! secret_exists login-etl/pii-keys; then
  # Build the JSON with Python (LocalStack's own runtime), so a key never goes through a shell
  # word split or an echo to the log.
  python3 - "$REGION" <<'PY' >/tmp/pii-keys.json
import base64, json, os, sys
spec = os.environ.get("LOGIN_ETL_PII_KEYS", "").strip()
if spec:
    keys = dict(item.split(":", 1) for item in spec.split(","))
    active = os.environ.get("PII_ACTIVE_KEY_ID") or next(iter(keys))
else:
    keys = {"k1": base64.b64encode(os.urandom(64)).decode()}
    active = "k1"
# The function's secret holds the active key only (it never decrypts; docs/security.md).
print(json.dumps({"active": active, "keys": {active: keys[active]}}))
PY
  awslocal --region "$REGION" secretsmanager create-secret --name login-etl/pii-keys \
    --description "login-etl: PII key ring (local only)" \
    --secret-string file:///tmp/pii-keys.json >/dev/null
  rm -f /tmp/pii-keys.json
  if [ -n "${LOGIN_ETL_PII_KEYS:-}" ]; then
    echo "login-etl: created secret login-etl/pii-keys from PII_KEYS"
  else
    echo "login-etl: created secret login-etl/pii-keys with a fresh ephemeral key; read it with:"
    echo "  docker compose exec localstack awslocal secretsmanager get-secret-value --secret-id login-etl/pii-keys"
  fi
fi

awslocal --region "$REGION" s3 mb "s3://$BUCKET" >/dev/null 2>&1 || true
echo "login-etl: LocalStack is ready (secrets login-etl/db, login-etl/pii-keys; bucket $BUCKET)"
