"""End-to-end tests: the CLI and the runner against a real SQS API and PostgreSQL."""
