# login-etl: every entry point a user or CI needs. `make help` lists them.
# Each target builds its own virtualenv (.venv) from pyproject.toml; nothing is installed by hand.

SHELL := /bin/bash
# pgserver (the embedded PostgreSQL) ships wheels for CPython 3.11 and 3.12: prefer those.
PY ?= $(shell for p in python3.12 python3.11 python3; do if $$p -c "import sys; sys.exit(sys.version_info < (3, 11))" >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

# The dev tools come from requirements-dev.lock (hash-pinned; `make lock` regenerates it), then
# the project itself, editable, with nothing else resolved.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -n "$(PY)" || { echo "error: no python3 found; install Python >= 3.11" >&2; exit 1; }
	$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is required")'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	@# setuptools always warns that an install is editable; that one warning is filtered, no other.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv with the project and its dev tools

.PHONY: demo
demo: $(STAMP) ## Run the whole job locally: embedded Postgres + SQS API, exercise data, summary
	$(BIN)/login-etl demo

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check) and strict mypy over function/ cli/ bench/ scripts/ tests/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: test
test: lint ## The one gate: lint, types, and every test tier (not the slow soak)
	$(BIN)/python -m pytest -m "not slow"
	$(MAKE) --no-print-directory test-sam
	$(MAKE) --no-print-directory test-localstack

.PHONY: fmt
fmt: $(STAMP) ## Format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: clean
clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis

-include mk/*.mk
