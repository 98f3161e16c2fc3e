"""The Lambda entry point: Powertools Logger and Metrics around one call to ``run``.

Per-container state (settings, key ring, connection) is built at the first invocation rather
than at import, so a configuration error surfaces as one clear log line and a failed batch
instead of an opaque init failure, and so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .batch import BatchOutcome, check_event, process_batch
from .config import Settings, metrics_namespace, service_name
from .errors import (
    ConfigError,
    MalformedEventError,
    PrivilegeError,
    SecretsUnavailableError,
    StoreError,
    TransientStoreError,
)
from .runtime import Runtime
from .types import BatchResponse

if TYPE_CHECKING:
    # An annotation only: at run time it would load two Powertools modules that neither Logger
    # nor Metrics loads (tests/unit/test_cold_start_imports.py).
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["lambda_handler", "reset"]

logger = Logger(service=service_name())
metrics = Metrics(namespace=metrics_namespace(), service=service_name())

_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The container's runtime, built from the environment on first use."""
    global _runtime  # noqa: PLW0603 - one per Lambda container, by design
    if _runtime is None:
        runtime = Runtime(Settings.from_env(), mask_only=True)
        runtime.ensure_schema()
        _runtime = runtime
    return _runtime


def reset() -> None:
    """Forget the container state (close the connection); the next call rebuilds it from the env."""
    global _runtime  # noqa: PLW0603
    if _runtime is not None:
        _runtime.store.close()
    _runtime = None


def _publish(outcome: BatchOutcome) -> None:
    for name, value in (
        ("RecordsReceived", outcome.received),
        ("RecordsInserted", outcome.inserted),
        ("RecordsDuplicate", outcome.duplicates),
        ("RecordsRejected", outcome.rejected),
        ("RecordsFailed", outcome.failed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="BatchDuration", unit=MetricUnit.Milliseconds, value=outcome.batch_ms)
    metrics.add_metric(name="InsertDuration", unit=MetricUnit.Milliseconds, value=outcome.insert_ms)
    log = logger.error if outcome.failed else logger.info
    log("batch summary", extra=outcome.summary())


def run(event: Any, runtime: Runtime) -> BatchResponse:
    """Process one event. When every record failed transiently the batch raises, as Powertools'
    processors do, so the invocation counts as an error and the event source mapping backs off."""
    try:
        records = check_event(event)
    except MalformedEventError as err:
        logger.error("malformed event", extra={"error": str(err)})
        raise
    try:
        outcome = process_batch(records, runtime.keys.keyring(), runtime.store)
    except PrivilegeError:
        raise  # a "deploy error" line, from _deploy_errors_logged
    except StoreError as err:
        # Transient failures come back as failed records; this is what no retry fixes (no such
        # database, a schema nobody migrated with AUTO_MIGRATE off): one line for the runbook.
        logger.error("database error", extra={"error": str(err)})
        raise
    _publish(outcome)
    for observe in runtime.on_outcome:
        observe(outcome)
    if records and outcome.failed == len(records):
        raise TransientStoreError(f"all {len(records)} records failed: {outcome.error}")
    return outcome.response


@metrics.log_metrics(capture_cold_start_metric=True)
# log_event pinned off: one environment variable (POWERTOOLS_LOGGER_LOG_EVENT) would otherwise
# send every raw body, PII included, to CloudWatch.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> BatchResponse:
    """SQS batch in, ``{"batchItemFailures": [...]}`` out."""
    with _deploy_errors_logged():
        try:
            runtime = get_runtime()
        except PrivilegeError:
            raise
        except StoreError as err:
            # The first-batch migration could not reach the database: the whole batch is retried.
            logger.error("startup failed", extra={"error": str(err)})
            raise
        return run(event, runtime)


@contextlib.contextmanager
def _deploy_errors_logged() -> Iterator[None]:
    """A bad deploy fails the whole batch after one clear line (never a value), at startup or per
    batch (the key secret is read per batch, cached, so a bad rotation surfaces there).

    - ``configuration error``: a setting or the key secret is wrong.
    - ``secrets unavailable``: Secrets Manager throttled, failed (5xx) or could not be reached.
      Not a bad deploy but the same outcome for the batch: it fails whole, nothing is lost, and
      the event source mapping retries it; it gets its own line so nobody "fixes" a good secret.
    - ``deploy error``: the database role lacks a grant. Nothing is half-written; the Errors
      alarm fires at the first batch; the messages wait in the queue, then in the DLQ, for a
      redrive once the grant is fixed. Never a march of rows to the rejects.
    """
    try:
        yield
    except ConfigError as err:
        logger.error("configuration error", extra={"error": str(err)})
        raise
    except SecretsUnavailableError as err:
        logger.error("secrets unavailable", extra={"error": str(err)})
        raise
    except PrivilegeError as err:
        logger.error("deploy error", extra={"error": str(err)})
        raise
