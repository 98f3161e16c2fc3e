"""A TCP fault proxy between pg8000 and PostgreSQL: forward, or drop/refuse on command.

It listens on 127.0.0.1 and forwards to the server's unix socket (or a TCP address). Tests point
``DATABASE_URL`` at it and then break the path exactly when they want to.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


class FaultProxy:
    """``down()`` resets live connections and refuses new ones; ``up()`` heals.

    ``cut_after(n)`` resets the next connection once the client has sent ``n`` more bytes,
    which lands a drop in the middle of a statement (e.g. during a COPY).
    """

    def __init__(self, target: str | tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._refusing = False
        self._cut_budget: int | None = None
        self._refuse_after_cut = False
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    # --- control --------------------------------------------------------------------------------
    def down(self) -> None:
        with self._lock:
            self._refusing = True
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def up(self) -> None:
        with self._lock:
            self._refusing = False

    def cut_after(self, client_bytes: int, *, then_refuse: bool = True) -> None:
        with self._lock:
            self._cut_budget = client_bytes
            self._refuse_after_cut = then_refuse

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()

    def url_for(self, user: str, database: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    # --- plumbing -------------------------------------------------------------------------------
    def _connect_target(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            return upstream
        return socket.create_connection(self.target)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                _reset(client)
                continue
            try:
                upstream = self._connect_target()
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client:
                    with self._lock:
                        budget = self._cut_budget
                        if budget is not None:
                            self._cut_budget = budget - len(data)
                    if budget is not None and budget - len(data) < 0:
                        with self._lock:
                            self._cut_budget = None
                            self._refusing = self._refusing or self._refuse_after_cut
                        dst.sendall(data[: max(budget, 0)])
                        _reset(src)
                        _reset(dst)
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a crashed peer or a NAT timeout looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


def target_of(url: str) -> str | tuple[str, int]:
    """Where the proxy should forward for ``url``: a unix socket path or (host, port)."""
    from login_etl.config import parse_database_url

    params: Any = parse_database_url(url)
    if params.unix_sock is not None:
        return str(params.unix_sock)
    return (str(params.host), int(params.port))
