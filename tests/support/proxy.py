"""A TCP fault proxy between pg8000 and PostgreSQL: forward, or drop/delay/refuse on command.

It listens on 127.0.0.1 and forwards to the server's unix socket (or a TCP address). Tests point
``DATABASE_URL`` at it and then break the path exactly when they want to:

- ``down()``/``up()``: reset every live connection and refuse new ones, then heal;
- ``cut_after(n)``: reset once the client has sent ``n`` more bytes (a drop mid-statement);
- ``cut_after_commit()``: let the server commit, then reset before the client sees the
  ``CommandComplete`` of ``COMMIT`` (the ambiguous failure: committed, but not acknowledged);
- ``delay(s)``: hold every client->server chunk for ``s`` seconds (a slow or distant database);
- ``refuse_for(s)``: refuse for ``s`` seconds, then heal by itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Final

#: The PostgreSQL wire bytes of ``CommandComplete("COMMIT")``: tag 'C', int32 length 11, "COMMIT\0".
COMMIT_COMPLETE: Final = b"C\x00\x00\x00\x0bCOMMIT\x00"


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
        self._delay_s = 0.0
        self._commit_cuts = 0
        self._refuse_after_commit_s = 0.0
        self.connections = 0
        #: Faults that actually fired, by kind; tests assert the fault really happened.
        self.fired: dict[str, int] = {}
        self._heal_timer: threading.Timer | None = None
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

    def cut_after_commit(self, count: int = 1, *, then_refuse_s: float = 0.0) -> None:
        """Reset the next ``count`` connections whose server answers ``COMMIT``, dropping that answer.

        The server has committed; the client sees a dead socket instead of the acknowledgement.
        With ``then_refuse_s`` new connections are refused for that long afterwards, so the
        store's one reconnect fails too and the batch goes back to SQS.
        """
        with self._lock:
            self._commit_cuts = count
            self._refuse_after_commit_s = then_refuse_s

    def delay(self, seconds: float) -> None:
        """Hold each client->server chunk ``seconds`` before forwarding it (0 turns it off)."""
        with self._lock:
            self._delay_s = seconds

    def refuse_for(self, seconds: float) -> None:
        """``down()`` now and ``up()`` after ``seconds``, on a timer."""
        self.down()
        self._heal_after(seconds)

    def _heal_after(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self.up)
        timer.daemon = True
        with self._lock:
            old, self._heal_timer = self._heal_timer, timer
        if old is not None:
            old.cancel()
        timer.start()

    def _fire(self, kind: str) -> None:
        with self._lock:
            self.fired[kind] = self.fired.get(kind, 0) + 1

    def close(self) -> None:
        self._closed = True
        with self._lock:
            timer = self._heal_timer
        if timer is not None:
            timer.cancel()
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
                if not from_client and COMMIT_COMPLETE in data and self._take_commit_cut():
                    # The server committed; the client never hears so.
                    _reset(src)
                    _reset(dst)
                    return
                if from_client:
                    with self._lock:
                        delay = self._delay_s
                    if delay > 0:
                        time.sleep(delay)
                    with self._lock:
                        budget = self._cut_budget
                        if budget is not None:
                            self._cut_budget = budget - len(data)
                    if budget is not None and budget - len(data) < 0:
                        with self._lock:
                            self._cut_budget = None
                            self._refusing = self._refusing or self._refuse_after_cut
                        dst.sendall(data[: max(budget, 0)])
                        self._fire("cut")
                        _reset(src)
                        _reset(dst)
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _take_commit_cut(self) -> bool:
        with self._lock:
            if self._commit_cuts <= 0:
                return False
            self._commit_cuts -= 1
            refuse_s = self._refuse_after_commit_s
            self.fired["commit_cut"] = self.fired.get("commit_cut", 0) + 1
            if refuse_s > 0:
                self._refusing = True
        if refuse_s > 0:
            self._heal_after(refuse_s)
        return True


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a crashed peer or a NAT timeout looks."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # close() alone does not wake the other pump thread blocked in recv() on this socket, and the
    # kernel keeps the connection open until it returns; shutdown() wakes it, so the peer sees
    # the drop now, not at its read timeout.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def target_of(url: str) -> str | tuple[str, int]:
    """Where the proxy should forward for ``url``: a unix socket path or (host, port)."""
    from login_etl.config import parse_database_url

    params: Any = parse_database_url(url)
    if params.unix_sock is not None:
        return str(params.unix_sock)
    return (str(params.host), int(params.port))
