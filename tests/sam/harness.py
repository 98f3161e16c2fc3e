"""Test support for tests/sam: a private network namespace, with a Docker engine and a
PostgreSQL inside it, that the real SAM CLI drives.

Why a namespace: the containers SAM CLI starts need a bridge, and a bridge plus a container
engine on the host would touch the host's network. Inside a namespace of our own, the engine
(`--iptables=false --ip-masq=false`), its bridges, the containers and the database see only each
other and the namespace's own loopback; nothing can reach an address outside it.

Everything started here is recorded in a `Cleanup` stack and stopped by PID, newest first, by
the session fixture's `finally`, by `atexit`, and on SIGTERM; a namespace left behind by a run
that was killed outright is deleted by the next run (its name holds the dead run's PID).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

NS_PREFIX = "login-etl-sam-"
# Debian's docker.io client: the same release as its dockerd. (/usr/local/bin/docker on this
# machine image is a newer client that PATH puts first; it is not used.)
DOCKER_CLI = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
CAP_SYS_ADMIN = 21
# The samconfig network (docker_network = "login-etl"): a fixed subnet is fine, it exists only
# inside this run's namespace. PostgreSQL answers the containers on its gateway address.
NETWORK = "login-etl"
SUBNET = "172.30.0.0/24"
GATEWAY = "172.30.0.1"
PG_PORT = 5432


class Cleanup:
    """A stack of stop actions, run once, newest first, whatever ends the run."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []
        atexit.register(self.run)

    def push(self, what: str, action: Callable[[], None]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        with ignoring_signals():  # a second Ctrl-C or SIGTERM must not cut a stop in half
            self._run()

    def _run(self) -> None:
        errors = []
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest; report them at the end
                errors.append(f"{what}: {exc}")
        if errors:
            raise RuntimeError("cleanup failed: " + "; ".join(errors))


@contextlib.contextmanager
def ignoring_signals() -> Iterator[None]:
    try:
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def raise_on_sigterm() -> None:
    """SIGTERM becomes KeyboardInterrupt, so pytest tears the fixtures down as on Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


# --- what the tier needs ---------------------------------------------------------------------


def has_cap_sys_admin() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_SYS_ADMIN & 1)
    return False


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def missing_pieces(sam: str | None) -> list[str]:
    """What this machine lacks to run the tier, each named so a person can fix it."""
    missing = []
    if os.geteuid() != 0 or not has_cap_sys_admin():
        missing.append("root with CAP_SYS_ADMIN (network namespace, container engine)")
    for path, package in (
        (DOCKERD, "docker.io"),
        (DOCKER_CLI, "docker.io"),
        ("/usr/sbin/debootstrap", "debootstrap"),
    ):
        if not Path(path).exists():
            missing.append(f"{path} (Debian package {package}; `make test-sam` installs it with apt)")
    for tool in ("ip", "nsenter", "setpriv", "flock"):
        if shutil.which(tool) is None:
            missing.append(f"the `{tool}` command")
    if postgres_bin() is None:
        missing.append("Debian's postgresql (/usr/lib/postgresql/*/bin/postgres)")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        missing.append("the `postgres` user (Debian's postgresql package creates it)")
    if not sam:
        missing.append("LOGIN_ETL_SAM (the SAM CLI; run the tier with `make test-sam`)")
    if (
        shutil.which("python3.12") is None
        or subprocess.run(["python3.12", "--version"], capture_output=True, check=False).returncode
    ):
        missing.append("python3.12 on PATH for `sam build` (`make test-sam` adds pyenv's)")
    return missing


# --- processes ---------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, read from /proc (to stop them by PID, not by name)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def stop_pid(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 30) -> None:
    """Signal one process we started, wait, then SIGKILL it and whatever it left below it."""
    below = descendants(proc.pid)
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    deadline = time.monotonic() + 10
    while (left := [p for p in below if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def unmount_below(root: Path) -> None:
    """Unmount whatever an engine left mounted under ``root`` (deepest first), then delete it."""
    prefix = str(root.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


# --- the namespace -----------------------------------------------------------------------------


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"/run/netns/{name}"

    @classmethod
    def create(cls) -> Namespace:
        reap_stale_namespaces()
        ns = cls(f"{NS_PREFIX}{os.getpid()}")
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True)
        subprocess.run(["ip", "-n", ns.name, "link", "set", "lo", "up"], check=True)
        return ns

    def enter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace. nsenter rather than `ip netns exec`, which remounts
        /sys and hides the cgroup mounts the engine needs; nsenter execs, so the PID is argv's."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)
        if self.name in namespaces():
            raise RuntimeError(f"network namespace {self.name} is still there")


def namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def reap_stale_namespaces() -> None:
    """Delete the namespaces of earlier runs whose process is gone (killed with SIGKILL)."""
    for name in namespaces():
        suffix = name.removeprefix(NS_PREFIX)
        if name.startswith(NS_PREFIX) and suffix.isdigit() and not alive(int(suffix)):
            subprocess.run(["ip", "netns", "delete", name], check=False)


def wait_for(
    what: str, ready: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            problem = f"exited with {proc.returncode} before it was ready"
        elif time.monotonic() > deadline:
            problem = f"not ready after {timeout:.0f} s"
        else:
            time.sleep(0.3)
            continue
        raise RuntimeError(f"{what} {problem}; the end of {log}:\n{log.read_text(errors='replace')[-2000:]}")


# --- the engine --------------------------------------------------------------------------------


class Engine:
    """Debian's dockerd in the namespace, with its own data root, exec root and socket."""

    def __init__(self, ns: Namespace, root: Path) -> None:
        self.ns = ns
        self.root = root
        self.sock = root / "docker.sock"
        self.env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_BUILDKIT": "0",  # Debian's 20.10 client has no buildx
        }
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True)
        argv = [
            DOCKERD,
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host=unix://{self.sock}",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
            "--log-level=warn",
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.ns.enter(argv), stdout=log, stderr=subprocess.STDOUT)
        wait_for("dockerd", self._answers, 90, self.proc, self.log)

    def _answers(self) -> bool:
        return self.sock.exists() and self.docker("version", check=False).returncode == 0

    def docker(self, *args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOCKER_CLI, *args], env=self.env, capture_output=True, text=True, check=check, **kwargs
        )

    def containers(self) -> list[str]:
        return self.docker("ps", "-aq").stdout.split()

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                for cid in self.containers():  # containers first: their shims outlive dockerd
                    self.docker("rm", "-f", cid, check=False, timeout=60)
            stop_pid(self.proc, grace=60)
        unmount_below(self.root)


# --- PostgreSQL for the containers --------------------------------------------------------------


class Postgres:
    """Debian's PostgreSQL in the namespace, as the `postgres` user (it refuses root).

    It listens on the namespace's addresses (the containers reach it at GATEWAY) and on a unix
    socket, which the tests on the host use: a path, so it crosses network namespaces."""

    user = "login_etl"

    def __init__(self, ns: Namespace, root: Path, password: str) -> None:
        self.ns = ns
        self.root = root
        self.password = password
        self.data = root / "data"
        self.sockdir = root / "sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def _as_postgres(self, argv: Sequence[str]) -> list[str]:
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]

    def start(self) -> None:
        bindir = postgres_bin()
        assert bindir is not None
        self.root.mkdir(parents=True)
        self.sockdir.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        shutil.chown(self.root, "postgres", "postgres")
        shutil.chown(self.sockdir, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}"]
        initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"]
        done = subprocess.run(self._as_postgres(initdb), capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        pwfile.unlink()
        hba = self.data / "pg_hba.conf"  # initdb's host lines cover loopback only
        hba.write_text(hba.read_text() + f"host all {self.user} {SUBNET} scram-sha-256\n")
        argv = [str(bindir / "postgres"), "-D", str(self.data), "-p", str(PG_PORT)]
        argv += ["-c", "listen_addresses=*", "-c", f"unix_socket_directories={self.sockdir}"]
        argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        log_path = self.root / "postgres.log"
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.ns.enter(self._as_postgres(argv)), stdout=log, stderr=subprocess.STDOUT
            )
        wait_for("postgres", self._answers, 60, self.proc, log_path)

    def _answers(self) -> bool:
        try:
            with contextlib.closing(socket.socket(socket.AF_UNIX)) as s:
                s.connect(str(self.sockdir / f".s.PGSQL.{PG_PORT}"))
            return True
        except OSError:
            return False

    @property
    def host_url(self) -> str:
        """For the tests on the host: the unix socket, as the login_etl superuser."""
        return f"postgresql://{self.user}@/postgres?host={self.sockdir}"

    def container_url(self, database: str) -> str:
        """For the function in a container: TCP to the bridge gateway, with a password."""
        return f"postgresql://{self.user}:{self.password}@{GATEWAY}:{PG_PORT}/{database}"

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc, sig=signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def cleanup_on_exit() -> Iterator[Cleanup]:
    cleanup = Cleanup()
    try:
        yield cleanup
    finally:
        cleanup.run()


def last_json_line(text: str) -> Any:
    """SAM CLI prints the function's response as the last line of stdout."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no response on stdout"
    return json.loads(lines[-1])
