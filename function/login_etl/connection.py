"""Opening a pg8000 connection the way a Lambda needs it: fast, bounded, and optionally TLS.

We hand pg8000 a socket we made ourselves because pg8000 never sets ``TCP_NODELAY``: with Nagle's
algorithm and the server's delayed ACK, every small write (BEGIN, a short INSERT) can stall until
the delayed-ACK timer fires. We also bound the connect and every read with timeouts, so a dead
database fails the batch quickly instead of eating the function's whole timeout.
"""

from __future__ import annotations

import socket
import ssl

import pg8000.native

from .config import ConnParams, DbSettings
from .dberrors import classify

__all__ = ["open_connection", "ssl_context_for"]

#: Margin on top of the server's statement timeout before the client gives up on a read.
_READ_MARGIN_S = 5.0


def ssl_context_for(db: DbSettings) -> ssl.SSLContext | None:
    """``disable`` -> None; ``require`` -> encrypted, unverified; ``verify-ca`` -> the chain is
    checked against the CA; ``verify-full`` -> the CA and the host name, as libpq does."""
    if db.sslmode == "disable":
        return None
    if db.sslmode == "require":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=db.sslrootcert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if db.sslmode == "verify-ca":
        ctx.check_hostname = False  # verify_mode stays CERT_REQUIRED
    return ctx


def _make_socket(params: ConnParams, timeout: float) -> socket.socket:
    if params.unix_sock is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(params.unix_sock)
        except BaseException:
            sock.close()
            raise
        return sock
    assert params.host is not None
    sock = socket.create_connection((params.host, params.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def open_connection(params: ConnParams, db: DbSettings) -> pg8000.native.Connection:
    """Connect, or raise a classified ``StoreError`` (transient for network failures).

    The statement timeout travels in the startup packet rather than a ``SET``, which would add a
    round trip and pin the connection behind RDS Proxy.
    """
    startup: dict[str, str] = {}
    if db.statement_timeout_ms > 0:
        startup["statement_timeout"] = str(db.statement_timeout_ms)
    sock: socket.socket | None = None
    ssl_context = ssl_context_for(db)
    try:
        sock = _make_socket(params, db.connect_timeout_s)
        conn = pg8000.native.Connection(
            user=params.user,
            password=params.password,
            database=params.database,
            host=params.host or "localhost",
            port=params.port,
            sock=sock,
            # pg8000 reads ssl_context=None as "prefer" (try TLS unverified, fall back to
            # plaintext); only False means no TLS at all, which is what "disable" promises.
            ssl_context=ssl_context if ssl_context is not None else False,
            application_name="login-etl",
            startup_params=startup,
        )
        # After the handshake, reads wait as long as the server may legitimately work, no longer.
        # pg8000 keeps the socket it talks on (TLS-wrapped or not) in ``_usock``.
        read_timeout = db.statement_timeout_ms / 1000 + _READ_MARGIN_S
        conn._usock.settimeout(read_timeout if db.statement_timeout_ms > 0 else None)
    except Exception as exc:
        if sock is not None:
            sock.close()
        raise classify(exc) from exc
    return conn
