"""LocalStack on this host, without Docker: its cached virtualenv, start, stop.

`make up` uses it when there is no `docker` (and `make test-localstack` always): LocalStack 4.14.0
(the version docker-compose.yml pins) runs from PyPI in its own virtualenv under
${LOGIN_ETL_CACHE:-~/.cache/login-etl}/localstack-4.14.0, built once under a file lock. Lambda
functions run through localstack/host-executor (a local process instead of a container; test
and local support, never deployed). The same ready hook as docker compose
(localstack/init/ready.d) creates the secrets and the bucket the stack reads.

    python scripts/localstack_host.py venv                 build the cache (idempotent)
    python scripts/localstack_host.py up --rie PATH        start, wait until ready, print the URL
    python scripts/localstack_host.py down                 stop what `up` started, by PID
    python scripts/localstack_host.py python-dir           where the template's Runtime python is

Stdlib only, so it runs from any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

LOCALSTACK_VERSION = "4.14.0"
# Released after 4.14.0 and incompatible with it.
UPPER_PINS = ["cbor2<6", "pyopenssl<26", "localstack-twisted<26"]
# The stack's services only (docker-compose.yml lists the same).
SERVICES = "cloudformation,cloudwatch,iam,lambda,logs,s3,secretsmanager,sns,sqs,sts"
REPO = Path(__file__).resolve().parent.parent


def lambda_runtime(template: Path = REPO / "template.yaml") -> str:
    """'3.12' from the template's `Runtime: python3.12`: the one place the version is written."""
    match = re.search(r"^\s*Runtime:\s*python(\d+\.\d+)\s*$", template.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{template} has no `Runtime: pythonX.Y`")
    return match.group(1)


LAMBDA_RUNTIME = lambda_runtime()
EXECUTOR_SRC = REPO / "localstack" / "host-executor"
READY_HOOKS = REPO / "localstack" / "init" / "ready.d"


def cache_dir() -> Path:
    root = os.environ.get("LOGIN_ETL_CACHE") or str(Path.home() / ".cache" / "login-etl")
    return Path(root) / f"localstack-{LOCALSTACK_VERSION}"


def find_python(version: str) -> Path | None:
    """python<version> on PATH, else pyenv's (the image ships them there, off PATH)."""
    found = shutil.which(f"python{version}")
    candidates = [Path(found)] if found else []
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    for candidate in candidates:
        done = subprocess.run([str(candidate), "-c", "pass"], capture_output=True, check=False)
        if done.returncode == 0:
            return candidate.resolve()
    return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _venv(python: Path, target: Path, packages: list[str], stamp_text: str) -> Path:
    stamp = target / ".login-etl-stamp"
    if stamp.is_file() and stamp.read_text() == stamp_text:
        return target / "bin" / "python"
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([str(python), "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *packages], check=True)
    stamp.write_text(stamp_text)
    return target / "bin" / "python"


def ensure_venv() -> dict[str, Path]:
    """The LocalStack venv (Python 3.13: LocalStack 4.14 needs >= 3.12 syntax) and the Lambda
    runtime's venv (Python 3.12 + awslambdaric), each rebuilt only when its inputs change."""
    root = cache_dir()
    py313, py312 = find_python("3.13"), find_python(LAMBDA_RUNTIME)
    missing = [f"python{v}" for v, p in (("3.13", py313), (LAMBDA_RUNTIME, py312)) if p is None]
    if missing:
        raise RuntimeError(f"LocalStack on the host needs {' and '.join(missing)} (PATH or pyenv)")
    assert py313 is not None and py312 is not None
    with locked(root / ".lock"), ThreadPoolExecutor(max_workers=1) as pool:
        # The small runtime venv builds while pip works on LocalStack's (a cold cache is
        # mostly waiting on downloads).
        lambda_venv = root / f"lambda-python{LAMBDA_RUNTIME}"
        lambda_build = pool.submit(_venv, py312, lambda_venv, ["awslambdaric"], str(py312))
        ls_pkgs = [f"localstack-core[runtime]=={LOCALSTACK_VERSION}", *UPPER_PINS]
        ls_python = _venv(py313, root / "venv", ls_pkgs, " ".join([str(py313), *ls_pkgs]))
        # The executor goes to its own directory per source version, on LocalStack's PYTHONPATH
        # (its entry point is found there too): the shared venv is never changed after it is
        # built, so clones with different versions can run at the same time.
        executor = root / f"executor-{_tree_hash(EXECUTOR_SRC)}"
        if not (executor / ".login-etl-stamp").is_file():
            build = root / "executor-build"
            shutil.rmtree(build, ignore_errors=True)
            shutil.rmtree(executor, ignore_errors=True)
            shutil.copytree(EXECUTOR_SRC, build, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            pip = [str(ls_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, "--no-deps", "--target", str(executor), str(build)], check=True)
            shutil.rmtree(build, ignore_errors=True)
            (executor / ".login-etl-stamp").write_text("")
        lambda_python = lambda_build.result()
    return {"localstack": ls_python, "lambda_python": lambda_python, "executor": executor}


# --- run -----------------------------------------------------------------------------------------
def state_dir() -> Path:
    return cache_dir() / "state"


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_localstack/init/ready", timeout=2) as response:  # noqa: S310
            return bool(json.load(response).get("completed"))
    except (OSError, ValueError):
        return False


def start(
    rie: Path, port: int, state: Path, extra_env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.Popen[bytes]:
    """Start LocalStack bound to 127.0.0.1:port; return once every ready hook has run."""
    tools = ensure_venv()
    if not rie.is_file():
        raise RuntimeError(f"no Runtime Interface Emulator at {rie} (it ships in aws-sam-cli)")
    hooks = state / "etc" / "localstack" / "init" / "ready.d"
    hooks.parent.mkdir(parents=True, exist_ok=True)
    if hooks.is_symlink() or hooks.exists():
        hooks.unlink()
    hooks.symlink_to(READY_HOOKS)
    env = {
        **os.environ,
        **(extra_env or {}),
        # This machine may itself be a container: LocalStack would then take the container's
        # layout (/var/lib/localstack, /etc/localstack/init), shared by every run. It is a host.
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(state),  # its data dirs, and etc/localstack/init for the hooks
        "DNS_ADDRESS": "0",  # no DNS server (it would bind port 53)
        "GATEWAY_SERVER": "hypercorn",  # the default server would bind every interface
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SQS_ENDPOINT_STRATEGY": "path",  # *.localhost.localstack.cloud needs DNS
        "SERVICES": SERVICES,
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_RUNTIME_EXECUTOR": "login-etl-local",
        "LAMBDA_KEEPALIVE_MS": os.environ.get("LAMBDA_KEEPALIVE_MS", "600000"),
        "LOGIN_ETL_RIE": str(rie),
        "LOGIN_ETL_LAMBDA_PYTHON": str(tools["lambda_python"]),
        "PYTHONPATH": str(tools["executor"]),
        "DISABLE_EVENTS": "1",  # no analytics calls home
        "SKIP_SSL_CERT_DOWNLOAD": "1",
    }
    with (state / "localstack.log").open("ab") as log:
        process = subprocess.Popen(
            [str(tools["localstack"]), "-m", "localstack.runtime.main"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while not ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process.pid)
            tail = (state / "localstack.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"LocalStack did not become ready on {url}:\n{tail}")
        time.sleep(0.5)
    return process


def _children(pid: int) -> list[int]:
    """Every descendant of pid (the Lambda emulators it started), from /proc."""
    parents: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(status.parent.name)] = int(status.read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def stop(pid: int, grace: float = 20) -> list[int]:
    """SIGTERM LocalStack (it stops its Lambda environments), then SIGKILL whatever is left of
    it and of the processes it had started. Returns the PIDs still alive after that (none)."""
    family = _children(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    for leftover in [pid, *family]:
        if _alive(leftover):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    time.sleep(0.2)
    return [leftover for leftover in [pid, *family] if _alive(leftover)]


# --- command line (make up / make down without Docker) -------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("venv", help="build the cached virtualenvs")
    up = sub.add_parser("up", help="start LocalStack in the background")
    up.add_argument("--rie", type=Path, required=True, help="aws-lambda-rie-x86_64 from aws-sam-cli")
    up.add_argument("--port", type=int, default=4566)
    sub.add_parser("down", help="stop it")
    runtime_help = f"print the directory of a python{LAMBDA_RUNTIME}, the template's Runtime (for sam build)"
    sub.add_parser("python-dir", help=runtime_help)
    opts = parser.parse_args(argv)
    try:
        return _run(opts)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(opts: argparse.Namespace) -> int:
    pid_file = state_dir() / "localstack.pid"
    if opts.command == "venv":
        for name, path in ensure_venv().items():
            print(f"{name}: {path}")
    elif opts.command == "up":
        if pid_file.is_file() and _alive(int(pid_file.read_text())):
            print(f"LocalStack already runs (pid {pid_file.read_text().strip()})")
            return 0
        state_dir().mkdir(parents=True, exist_ok=True)
        # The database the ready hook writes into the secret: yours, on this host.
        port = os.environ.get("LOGIN_ETL_PG_PORT", "5432")
        db = {"LOGIN_ETL_DB_HOST": "127.0.0.1", "LOGIN_ETL_DB_PORT": port}
        process = start(opts.rie, opts.port, state_dir(), {**db, **os.environ})
        pid_file.write_text(str(process.pid))
        print(
            f"LocalStack {LOCALSTACK_VERSION} on http://127.0.0.1:{opts.port} (pid {process.pid}; "
            f"log {state_dir() / 'localstack.log'}); stop it with `make down`"
        )
    elif opts.command == "python-dir":
        python = find_python(LAMBDA_RUNTIME)
        if python is None:
            runtime = f"python{LAMBDA_RUNTIME}"
            raise RuntimeError(
                f"`sam build` needs {runtime} (template.yaml: `Runtime: {runtime}`) "
                "and there is none that runs, on PATH or in pyenv's versions/: install it, or build "
                "in a container with SAM_BUILD_FLAGS=--use-container (needs Docker)"
            )
        print(python.parent)
    elif pid_file.is_file():
        stop(int(pid_file.read_text()))
        pid_file.unlink()
        print("LocalStack stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
