"""login-etl: SQS user-login events -> validated, PII-masked, idempotent rows in PostgreSQL.

The Lambda entry point is ``login_etl.handler.lambda_handler``. Importing this package is kept
cheap on purpose (cold start): it imports no submodule.
"""

__version__ = "0.1.0"
