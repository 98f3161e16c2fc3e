"""The command line's one door to the process environment.

Configuration is parsed by ``login_etl.config`` (the function's own code), never here; this module
only decides which variables a local run sets before the handler is imported (Powertools reads its
settings at import), and hands the environment to ``login_etl.config``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from typing import Final

from login_etl import config
from login_etl import constants as c

__all__ = [
    "DEMO_KEY_ID",
    "demo_environment",
    "drop_stray_emf",
    "ephemeral_key_spec",
    "logging_defaults",
    "user_database_url",
]

DEMO_KEY_ID: Final = "demo"
_LOG_LEVEL: Final = "POWERTOOLS_LOG_LEVEL"
_METRICS_DISABLED: Final = "POWERTOOLS_METRICS_DISABLED"


def logging_defaults(*, level: str | None, default_level: str, metrics: bool) -> None:
    """Set the handler's Powertools log level and metrics switch; call before importing it.

    An explicit ``level`` (from --quiet/--verbose) wins; otherwise a level the user exported
    wins over ``default_level``. Metrics (CloudWatch EMF blobs on stdout) are off locally unless
    asked for, since nothing collects them.
    """
    if level is not None:
        os.environ[_LOG_LEVEL] = level
    else:
        os.environ.setdefault(_LOG_LEVEL, default_level)
    if metrics:
        os.environ[_METRICS_DISABLED] = "false"
    else:
        os.environ.setdefault(_METRICS_DISABLED, "true")


def user_database_url() -> str | None:
    """``DATABASE_URL`` when the user set one (validated by ``login_etl.config``), else None."""
    url = os.environ.get(c.ENV_DATABASE_URL, "").strip() or None
    if url is not None:
        config.parse_database_url(url)  # a clear ConfigError on a malformed URL
    return url


def ephemeral_key_spec() -> str:
    """A fresh 64-byte key as a ``PII_KEYS`` spec; it exists only for one demo run."""
    return f"{DEMO_KEY_ID}:{base64.b64encode(secrets.token_bytes(64)).decode('ascii')}"


@contextlib.contextmanager
def demo_environment(database_url: str, key_spec: str) -> Iterator[None]:
    """Point the handler at ``database_url`` with the key ring ``key_spec``; restore on exit.

    The Secrets Manager alternatives are removed for the run, since config refuses both forms.
    """
    names = (
        c.ENV_DATABASE_URL,
        c.ENV_DB_SECRET_ARN,
        c.ENV_PII_KEYS,
        c.ENV_PII_KEYS_SECRET_ARN,
        c.ENV_PII_ACTIVE_KEY_ID,
    )
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ[c.ENV_DATABASE_URL] = database_url
    os.environ[c.ENV_PII_KEYS] = key_spec
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def drop_stray_emf() -> Iterator[None]:
    """Discard ``print``-ed output while the handler runs with metrics disabled.

    Powertools publishes the ColdStart metric with ``single_metric``, which prints its EMF blob
    even under ``POWERTOOLS_METRICS_DISABLED``. The handler's log lines are unaffected: the Logger
    writes to the stdout it bound at import, not through ``print``.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        yield
