"""A dedicated PostgreSQL cluster on 127.0.0.1 that a test may stop, restart, or run with TLS.

The session-shared server (``pg_server_url``) must never be restarted under other tests, so the
restart and TLS tests start their own from the same kind of binaries:

- pgserver's bundled PostgreSQL 16 (``pgserver/pginstall/bin``): always there with the dev extras,
  but built without OpenSSL;
- a distribution's PostgreSQL (``/usr/lib/postgresql/<v>/bin``, Debian's ``postgresql`` package),
  which has OpenSSL; the TLS test needs it.

``initdb`` and ``postgres`` refuse to run as root, so as root they run as the ``pgserver`` system
user (created by pgserver itself, or here with ``useradd`` as pgserver does).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

SYSTEM_USER = "pgserver"


def pgserver_bin() -> Path | None:
    """pgserver's bundled binaries, if the wheel is installed."""
    try:
        import pgserver._commands as commands
    except ImportError:
        return None
    path = Path(commands.POSTGRES_BIN_PATH)
    return path if (path / "postgres").exists() else None


def ssl_capable_bin() -> Path | None:
    """A PostgreSQL bin directory whose server was built with OpenSSL, or None."""
    candidates = [pgserver_bin(), *map(Path, sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))]
    for candidate in candidates:
        if candidate is None or not (candidate / "postgres").exists():
            continue
        pg_config = candidate / "pg_config"
        configure = ""
        if pg_config.exists():
            configure = subprocess.run(
                [str(pg_config), "--configure"], capture_output=True, text=True, check=False
            ).stdout
        if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
            return candidate
        ldd = shutil.which("ldd")
        if (
            ldd
            and "libssl"
            in subprocess.run(
                [ldd, str(candidate / "postgres")], capture_output=True, text=True, check=False
            ).stdout
        ):
            return candidate
    return None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


class LocalCluster:
    """initdb + pg_ctl on a free 127.0.0.1 port. ``start``/``stop``/``restart`` are real."""

    def __init__(
        self,
        bin_dir: Path,
        *,
        password: str | None = None,
        conf: dict[str, str] | None = None,
        hba: list[str] | None = None,
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="login-etl-cluster-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.password = password
        self._init(conf or {}, hba, files or {})

    # --- lifecycle ------------------------------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _cmd(self, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / name), *args],
            user=self.user,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd=self.root,
        )

    def _init(self, conf: dict[str, str], hba: list[str] | None, files: dict[str, bytes]) -> None:
        self._chown(self.root)
        args = ["-D", str(self.data), "-U", "postgres", "--encoding=UTF8", "--auth=trust"]
        if self.password is not None:
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            self._chown(pwfile)
            args += ["--pwfile", str(pwfile), "--auth-host=scram-sha-256"]
        done = self._cmd("initdb", *args, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        (self.root / "pwfile").unlink(missing_ok=True)
        for name, content in files.items():
            path = self.data / name
            path.write_bytes(content)
            path.chmod(0o600)
            self._chown(path)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "fsync": "off",
            "max_connections": "40",
            **conf,
        }
        with (self.data / "postgresql.conf").open("a") as out:
            out.writelines(f"{k} = {v}\n" for k, v in settings.items())
        if hba is not None:
            (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")

    def start(self) -> None:
        done = self._cmd("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout[-500:]} {self.server_log()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._cmd("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- addresses ------------------------------------------------------------------------------
    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        auth = "postgres" if self.password is None else f"postgres:{self.password}"
        return f"postgresql://{auth}@{host}:{self.port}/{database}"


@contextlib.contextmanager
def local_cluster(bin_dir: Path, **kwargs: object) -> Iterator[LocalCluster]:
    cluster = LocalCluster(bin_dir, **kwargs)  # type: ignore[arg-type]
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
