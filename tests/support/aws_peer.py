"""Real protocol peers on loopback for AWS failures that moto cannot produce.

``closed_port()``: an address where every connect is refused. ``aws_json_peer(status, body)``: an
HTTP server on 127.0.0.1 that answers every AWS JSON-protocol call (Secrets Manager, SQS) with
``status`` and ``body``, as AWS does (``{"__type": code, "message": ...}`` for an error); with
``body`` None it accepts the request and drops the connection unanswered.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["aws_error", "aws_json_peer", "closed_port"]


@contextlib.contextmanager
def closed_port() -> Iterator[str]:
    """A loopback port that was just free and is closed again: every connect is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def aws_error(code: str) -> dict[str, Any]:
    """The body AWS's JSON protocol sends with an error ``code``."""
    return {"__type": code, "message": "as AWS says it"}


@contextlib.contextmanager
def aws_json_peer(status: int, body: dict[str, Any] | None) -> Iterator[str]:
    payload = json.dumps(body).encode()

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if body is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("x-amzn-RequestId", "3f1e8c1a-0000-4000-8000-000000000000")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
