# Deployment targets: sam local invoke, LocalStack (docker compose + samlocal) and AWS (sam).
# Included by the main Makefile (`-include mk/*.mk`); docs/deployment.md explains each path.
#
# aws-sam-cli lives in its own virtualenv because it pins boto3 and friends; the project's .venv
# never sees it. It is a download cache, so it lives outside the clone, keyed on its versions and
# on the Python that runs it, and is built under flock: two clones (or two tiers) building it at
# once wait for each other instead of colliding. Only these targets build it.

LOGIN_ETL_CACHE ?= $(HOME)/.cache/login-etl
SAM_CLI_VERSION ?= 1.170.0
SAM_CLI_LOCAL_VERSION ?= 1.71.0
SAM_PY_VERSION := $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
SAM_VENV ?= $(LOGIN_ETL_CACHE)/sam-cli-$(SAM_CLI_VERSION)-local-$(SAM_CLI_LOCAL_VERSION)-py$(SAM_PY_VERSION)
SAM_BIN := $(SAM_VENV)/bin
SAM_STAMP := $(SAM_VENV)/.installed-stamp
# `sam build` needs the python of template.yaml's `Runtime: pythonX.Y`, on PATH or pyenv's (the
# shell may have none that runs: a pyenv shim exists even when that version is not selected).
# `scripts/localstack_host.py python-dir` reads the Runtime and finds it; SAM_PATH puts it first
# on PATH. The one definition every `sam build` uses (build, invoke, deploy, deploy-localstack,
# test-sam), looked up once, when a recipe first needs it (`make help` never runs it).
LAMBDA_PY_DIR = $(eval LAMBDA_PY_DIR := $(shell $(PY) scripts/localstack_host.py python-dir 2>/dev/null))$(LAMBDA_PY_DIR)
SAM_PATH = $(if $(LAMBDA_PY_DIR),PATH="$(LAMBDA_PY_DIR):$$PATH" )
# The targets that build check first that it is there, and say so clearly when not; a container
# build (SAM_BUILD_FLAGS=--use-container) brings its own. (Set before the rules that use it.)
LAMBDA_PY_CHECK = $(if $(findstring --use-container,$(SAM_BUILD_FLAGS)),,lambda-python)
SAM = $(SAM_PATH)SAM_CLI_TELEMETRY=0 $(SAM_BIN)/sam
# samlocal points SAM at LocalStack's edge port; LocalStack accepts any credentials.
LOCALSTACK_URL ?= http://localhost:4566
# (samlocal is deprecated upstream in favour of `lstk sam`, which needs a LocalStack account.)
SAMLOCAL = SAM_CLI_TELEMETRY=0 DISABLE_DEPRECATION_NOTICE=1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
	AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=$(LOCALSTACK_URL) $(SAM_PATH)$(SAM_BIN)/samlocal
COMPOSE ?= docker compose
# compose with a Docker engine, else host: LocalStack on this host without Docker (mk/localstack.mk).
LOCALSTACK_MODE ?= $(if $(shell docker info >/dev/null 2>&1 && echo yes),compose,host)

ENV ?= default
STACK ?= $(shell $(PY) -c 'import tomllib; print(tomllib.load(open("samconfig.toml", "rb"))["$(ENV)"]["global"]["parameters"]["stack_name"])' 2>/dev/null)
LOCALSTACK_STACK := login-etl
EVENT ?= valid_batch
# extra flags for `sam build`, e.g. SAM_BUILD_FLAGS=--use-container without a local python of the Runtime
SAM_BUILD_FLAGS ?=

$(SAM_STAMP):
	@test -n "$(PY)" || { echo "error: no python3 found; install Python >= 3.11" >&2; exit 1; }
	@mkdir -p "$(LOGIN_ETL_CACHE)"
	flock "$(SAM_VENV).lock" $(SHELL) -euc 'test -f "$(SAM_STAMP)" && exit 0; \
		rm -rf "$(SAM_VENV)"; $(PY) -m venv "$(SAM_VENV)"; \
		"$(SAM_BIN)/python" -m pip install --quiet --upgrade pip; \
		"$(SAM_BIN)/python" -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)" "aws-sam-cli-local==$(SAM_CLI_LOCAL_VERSION)"; \
		touch "$(SAM_STAMP)"'

.PHONY: sam-venv
sam-venv: $(SAM_STAMP) ## Create the SAM CLI venv (in $(LOGIN_ETL_CACHE), kept out of the project venv)

.PHONY: events
events: $(STAMP) ## Regenerate events/*.json from the exercise data (deterministic)
	$(BIN)/python scripts/make_events.py

.PHONY: env-local
env-local: $(STAMP) ## Write events/env.local.json for sam local invoke (your PII_KEYS, or a fresh key it prints; FORCE=1 replaces one)
	$(BIN)/python scripts/make_events.py env-local $(if $(filter 1,$(FORCE)),--force)

.PHONY: validate
validate: $(STAMP) $(SAM_STAMP) ## Validate template.yaml offline: sam validate --lint, then the SAM transform checks
	$(SAM) validate --lint --region us-east-1
	$(BIN)/python -m pytest -q tests/unit/test_template.py tests/unit/test_samconfig.py

.PHONY: lambda-python
lambda-python: ## Check that the python of template.yaml's Runtime is there for `sam build`; print its directory
	@$(PY) scripts/localstack_host.py python-dir

.PHONY: build
build: $(SAM_STAMP) | $(LAMBDA_PY_CHECK) ## sam build (needs the Runtime's python, on PATH or pyenv's, or SAM_BUILD_FLAGS=--use-container and Docker)
	$(SAM) build --config-env $(ENV) $(SAM_BUILD_FLAGS)

# The compose targets need Compose v2 (`up --wait`). Without the v2 plugin Docker itself reads
# `compose up -d` and answers "unknown shorthand flag: 'd' in -d"; say what is wrong instead.
.PHONY: compose-check
compose-check:
	@v=$$($(COMPOSE) version --short 2>/dev/null | sed 's/^v//'); case "$$v" in [2-9]*) ;; *) \
		echo "error: '$(COMPOSE)' is not Docker Compose v2 (\`$(COMPOSE) version --short\` gave '$${v:-nothing}')." >&2; \
		echo "  Install the Compose v2 plugin (Debian/Ubuntu: apt-get install docker-compose-plugin; Docker Desktop" >&2; \
		echo "  ships it), or point COMPOSE at a v2 binary, e.g. make up COMPOSE=docker-compose." >&2; \
		exit 1;; esac

.PHONY: invoke
invoke: $(SAM_STAMP) | compose-check $(LAMBDA_PY_CHECK) ## sam local invoke on events/$(EVENT).json against the compose Postgres (needs Docker)
	@test -f events/env.local.json || $(MAKE) --no-print-directory env-local
	$(COMPOSE) up -d --wait postgres
	$(SAM) build --config-env default $(SAM_BUILD_FLAGS)
	$(SAM) local invoke LoginEtlFunction --config-env default --event events/$(EVENT).json

.PHONY: up
up: $(if $(filter host,$(LOCALSTACK_MODE)),$(SAM_STAMP)) | $(if $(filter compose,$(LOCALSTACK_MODE)),compose-check) ## Start LocalStack (+ Postgres): docker compose, or without Docker LocalStack on the host
ifeq ($(LOCALSTACK_MODE),compose)
	$(COMPOSE) up -d --wait
	@echo "LocalStack on $(LOCALSTACK_URL), Postgres on 127.0.0.1:$${LOGIN_ETL_PG_PORT:-5432}"
else
	@echo "no Docker engine: LocalStack runs on this host (the database: your PostgreSQL on 127.0.0.1:$${LOGIN_ETL_PG_PORT:-5432})"
	$(PY) scripts/localstack_host.py up --rie "$(RIE)"
endif

# The secrets' ARNs end in a random suffix LocalStack picks, so they are looked up here and
# appended to samconfig's localstack parameter_overrides (a CLI list replaces, not merges, it).
.PHONY: deploy-localstack
deploy-localstack: $(STAMP) $(SAM_STAMP) | $(LAMBDA_PY_CHECK) ## Build and deploy the stack into LocalStack with samlocal (after make up)
	$(SAMLOCAL) build --config-env localstack $(SAM_BUILD_FLAGS)
	@set -euo pipefail; \
	arn() { $(LOCALSTACK_CREDENTIALS) $(BIN)/python -c 'import boto3, sys; print(boto3.client("secretsmanager", \
		endpoint_url=sys.argv[1]).describe_secret(SecretId=sys.argv[2])["ARN"])' "$(LOCALSTACK_URL)" "$$1"; }; \
	db_arn=$$(arn login-etl/db); pii_arn=$$(arn login-etl/pii-keys); \
	params=$$($(BIN)/python -c 'import tomllib; print(" ".join(tomllib.load(open("samconfig.toml", "rb"))["localstack"]["deploy"]["parameters"]["parameter_overrides"]))'); \
	$(SAMLOCAL) deploy --config-env localstack \
		--parameter-overrides "$$params DbSecretArn=$$db_arn PiiKeysSecretArn=$$pii_arn"
	$(SAMLOCAL) list stack-outputs --stack-name $(LOCALSTACK_STACK) --output table

# Reads the QueueUrl output of the stack. TARGET=aws sends to the AWS stack of ENV instead.
TARGET ?= localstack
ifeq ($(TARGET),aws)
SEND_SAM := $(SAM)
SEND_STACK := $(STACK)
SEND_ENDPOINT :=
else
SEND_SAM := $(SAMLOCAL)
SEND_STACK := $(LOCALSTACK_STACK)
SEND_ENDPOINT := --endpoint-url $(LOCALSTACK_URL)
SEND_CREDENTIALS := AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
endif
# $(call stack_output,SAM command,stack,output key)
stack_output = $(1) list stack-outputs --stack-name $(2) --output json \
	| $(BIN)/python -c 'import json, sys; print({o["OutputKey"]: o["OutputValue"] for o in json.load(sys.stdin)}[sys.argv[1]])' $(3)

.PHONY: send
send: $(STAMP) $(SAM_STAMP) ## Send data/exercise_logins.ndjson (100 bodies) to the deployed queue (TARGET=localstack|aws)
	@set -euo pipefail; queue_url=$$($(call stack_output,$(SEND_SAM),$(SEND_STACK),QueueUrl)); \
	echo "sending data/exercise_logins.ndjson to $$queue_url"; \
	$(SEND_CREDENTIALS) $(BIN)/login-etl send --queue-url "$$queue_url" $(SEND_ENDPOINT) \
		--file data/exercise_logins.ndjson

.PHONY: logs
logs: $(SAM_STAMP) ## Tail the function's CloudWatch logs (TARGET=localstack|aws)
	$(SEND_SAM) logs --stack-name $(SEND_STACK) --name LoginEtlFunction --tail

.PHONY: down
down: | $(if $(filter compose,$(LOCALSTACK_MODE)),compose-check) ## Stop LocalStack (and the compose Postgres) and delete their data
ifeq ($(LOCALSTACK_MODE),compose)
	$(COMPOSE) down -v
else
	$(PY) scripts/localstack_host.py down
endif

# The bundle decides which servers the function trusts, so it is checked against the SHA-256
# recorded in mk/rds-global-bundle.sha256 before it is used. With no record yet, or when AWS has
# changed the bundle (a new CA), rds-ca stops and lists the certificates: compare them with
# AWS's published list ("Certificate authorities" in the RDS user guide), then `make
# rds-ca-accept` records the new checksum (commit it).
RDS_CA_URL ?= https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RDS_CA_SHA256_FILE ?= mk/rds-global-bundle.sha256
RDS_CA_OUT ?= function/rds-global-bundle.pem

.PHONY: rds-ca
rds-ca: ## Fetch the RDS CA bundle into function/ and check its recorded SHA-256 (needs internet)
	curl -fsSL "$(RDS_CA_URL)" -o "$(RDS_CA_OUT).tmp"
	grep -q "BEGIN CERTIFICATE" "$(RDS_CA_OUT).tmp"
	@set -euo pipefail; \
	actual=$$(sha256sum "$(RDS_CA_OUT).tmp" | cut -d" " -f1); \
	expected=$$(grep -Eo '^[0-9a-f]{64}' "$(RDS_CA_SHA256_FILE)" 2>/dev/null | head -1 || true); \
	if [ "$$actual" != "$$expected" ]; then \
		echo "error: $(RDS_CA_URL) has SHA-256 $$actual, not the recorded $${expected:-(none)}" >&2; \
		echo "its certificates:" >&2; \
		openssl crl2pkcs7 -nocrl -certfile "$(RDS_CA_OUT).tmp" | openssl pkcs7 -print_certs -noout >&2 || true; \
		echo "if they are AWS's published RDS CAs, run: make rds-ca-accept" >&2; \
		exit 1; \
	fi
	mv "$(RDS_CA_OUT).tmp" "$(RDS_CA_OUT)"
	@echo "$(RDS_CA_OUT): $$(grep -c 'BEGIN CERTIFICATE' "$(RDS_CA_OUT)") certificates, SHA-256 as recorded"

.PHONY: rds-ca-accept
rds-ca-accept: ## Record the SHA-256 of the bundle rds-ca just fetched (after reviewing it), and use it
	test -f "$(RDS_CA_OUT).tmp"
	@{ echo "$$(sha256sum "$(RDS_CA_OUT).tmp" | cut -d' ' -f1)"; \
	   echo "# SHA-256 of $(RDS_CA_URL), reviewed and accepted $$(date -u +%F) (make rds-ca-accept)"; \
	} > "$(RDS_CA_SHA256_FILE)"
	mv "$(RDS_CA_OUT).tmp" "$(RDS_CA_OUT)"
	@echo "recorded in $(RDS_CA_SHA256_FILE): commit it"

# DB_SSLMODE=verify-full needs the RDS CA bundle in the package; REQUIRE_RDS_CA=0 skips it
# (for RDS Proxy with DbSslRootCert= , whose certificates chain to the public Amazon roots).
REQUIRE_RDS_CA ?= 1
# First deploy of an ENV whose stack does not exist yet is guided (it saves your answers in
# samconfig.toml); later deploys reuse them.
.PHONY: deploy
deploy: $(STAMP) $(SAM_STAMP) | $(LAMBDA_PY_CHECK) ## Build and deploy to AWS (ENV=default|prod; guided the first time; needs an AWS account)
	@if [ "$(REQUIRE_RDS_CA)" != 0 ] && [ ! -f function/rds-global-bundle.pem ]; then \
		$(MAKE) --no-print-directory rds-ca; fi
	$(SAM) build --config-env $(ENV) $(SAM_BUILD_FLAGS)
	@if $(BIN)/python -c 'import boto3, sys; boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])' "$(STACK)" >/dev/null 2>&1; then \
		$(SAM) deploy --config-env $(ENV); \
	else \
		echo "stack $(STACK) does not exist yet: deploying guided"; \
		$(SAM) deploy --config-env $(ENV) --guided; \
	fi

.PHONY: insights
insights: $(STAMP) $(SAM_STAMP) ## CloudWatch Logs Insights: the last hour's "batch summary" lines of the AWS stack (ENV=...; needs an AWS account)
	@set -euo pipefail; group=$$($(call stack_output,$(SAM),$(STACK),LogGroupName)); \
	$(BIN)/python - "$$group" <<< "$$INSIGHTS_PY"

define INSIGHTS_QUERY
fields @timestamp, received, inserted, duplicates, rejected, failed, batch_ms, insert_ms
| filter message = "batch summary"
| sort @timestamp desc
| limit 50
endef
define INSIGHTS_PY
import sys, time, boto3
logs = boto3.client("logs")
now = int(time.time())
query = logs.start_query(logGroupName=sys.argv[1], startTime=now - 3600, endTime=now,
                         queryString="""$(INSIGHTS_QUERY)""")
while (r := logs.get_query_results(queryId=query["queryId"]))["status"] in ("Scheduled", "Running"):
    time.sleep(1)
for row in r["results"]:
    print("  ".join(f'{f["field"]}={f["value"]}' for f in row if f["field"] != "@ptr"))
endef
export INSIGHTS_PY
