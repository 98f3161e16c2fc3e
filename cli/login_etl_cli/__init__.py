"""login-etl command line: local runner, demo and operator tools (never shipped to Lambda)."""
