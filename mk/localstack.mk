# LocalStack without Docker, and the LocalStack test tier (docs/deployment.md, "LocalStack").
#
# With a Docker engine `make up` runs docker compose; without one, LocalStack 4.14.0 runs on this
# host from its cached virtualenv (scripts/localstack_host.py), bound to 127.0.0.1, and Lambda
# functions run in local processes through the test-support executor in localstack/host-executor.

LOCALSTACK_CREDENTIALS := AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
# The AWS Runtime Interface Emulator that ships inside the aws-sam-cli wheel.
RIE = $(shell $(SAM_BIN)/python -c 'import pathlib, samcli; print(pathlib.Path(samcli.__file__).parent / "local/rapid/aws-lambda-rie-x86_64")')

.PHONY: localstack-venv
localstack-venv: ## Build LocalStack's cached virtualenv for the Docker-less mode (make up does it too)
	$(PY) scripts/localstack_host.py venv

# LOGIN_ETL_REQUIRE_AWS_LOCAL=1 (.ci/run) turns a missing piece into a failure instead of a skip.
.PHONY: test-localstack
test-localstack: $(STAMP) $(SAM_STAMP) ## LocalStack tier: samlocal deploy to a host LocalStack; its SQS poller runs the function
	LOGIN_ETL_LOCALSTACK_TIER=1 LOGIN_ETL_RIE="$(RIE)" \
		$(BIN)/python -m pytest tests/localstack -q -p no:cacheprovider
