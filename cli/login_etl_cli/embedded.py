"""Embedded services for a machine with no Docker and no AWS: PostgreSQL and an SQS API.

- PostgreSQL comes from the ``pgserver`` wheel: a real PostgreSQL 16 on a unix socket, which
  starts in about half a second, even as root (plain ``initdb`` refuses to run as root).
- SQS comes from moto's ``ThreadedMotoServer`` on 127.0.0.1: a real SQS API over HTTP, with
  redrive to a DLQ, long polling and the batch limits. (It accepts stale receipt handles, which
  real SQS does not.)

The demo and the test suite both start them through these two context managers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["EmbeddedUnavailableError", "embedded_postgres", "moto_sqs", "use_fake_aws_credentials"]


class EmbeddedUnavailableError(RuntimeError):
    """An embedded service cannot run here; the message says what to do instead."""


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL; yield its ``DATABASE_URL``; stop it and delete its files."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError as exc:
        raise EmbeddedUnavailableError(
            "the embedded PostgreSQL (pgserver) is not installed: it needs CPython 3.11 or 3.12 "
            "on Linux x86_64 or macOS; set DATABASE_URL to use your own PostgreSQL instead"
        ) from exc
    root = tempfile.mkdtemp(prefix="login-etl-pg-")
    server: Any = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(root, cleanup_mode="delete")  # type: ignore[attr-defined]
        yield str(server.get_uri())
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise EmbeddedUnavailableError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pick another --port, or 0 for any"
            ) from None


def use_fake_aws_credentials() -> None:
    """moto accepts any credentials, but boto3 insists on finding some and a region."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def moto_sqs(port: int = 0) -> Iterator[str]:
    """Start an in-process SQS API on 127.0.0.1 (``port``, or a free one); yield its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise EmbeddedUnavailableError(
            "moto[server] is not installed: run `make venv`, or pass --endpoint-url for a real queue"
        ) from exc
    if port:
        _check_port_free(port)  # moto's server thread would hang its start() on a busy port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
