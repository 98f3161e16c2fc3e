"""A LocalStack Lambda runtime executor that runs the function in a local process.

Test and local support, never deployed. LocalStack community runs each function in a Docker
container, through an init binary it downloads at run time; neither is available on a machine
without Docker and without the internet. Its executor is a plugin point
(``localstack.lambda.runtime_executor``), so this one runs the deployed code instead as:

    aws-lambda-rie  <python of the function's runtime> -m awslambdaric <handler>

- ``aws-lambda-rie`` is the AWS Runtime Interface Emulator, the binary that ships inside the
  aws-sam-cli wheel (``samcli/local/rapid/aws-lambda-rie-x86_64``); ``LOGIN_ETL_RIE`` names it.
- ``LOGIN_ETL_LAMBDA_PYTHON`` is an interpreter of the function's runtime with ``awslambdaric``
  (the AWS runtime interface client); a function of any other runtime is refused, loudly.
- The code is the one LocalStack stored for the function (the zip ``sam deploy`` uploaded,
  unzipped by LocalStack), the environment is the one LocalStack computes for it, and both
  ports are free loopback ports, so nothing listens beyond 127.0.0.1.

Each invocation's output (the function's log lines and the emulator's START/END/REPORT lines)
is handed back to LocalStack, which stores it in CloudWatch Logs as it does for a container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import requests
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from localstack import config

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
STARTUP_SECONDS = 20.0
# After the response, wait this long at most for the emulator's REPORT line (the log tail).
LOG_TAIL_SECONDS = 2.0
# Earlier output kept for get_logs() (LocalStack shows it when an environment fails).
KEEP_LINES = 200


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tool(variable: str) -> Path:
    value = os.environ.get(variable, "")
    if not value or not Path(value).is_file():
        raise LambdaRuntimeException(f"{variable} must name an existing file (got {value!r})")
    return Path(value)


def _python_runtime(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import sys, awslambdaric; print('python%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise LambdaRuntimeException(f"{python} lacks awslambdaric: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def _is_error_document(body: bytes) -> bool:
    """The emulator answers an unhandled exception with HTTP 200 and awslambdaric's error
    document ({"errorMessage", "errorType", "requestId", "stackTrace"}), with no header to tell it
    from a result, so the document's shape is the signal (what Lambda reports as FunctionError)."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and {"errorMessage", "errorType", "stackTrace"} <= document.keys()


class LocalProcessExecutor(RuntimeExecutor):
    """One execution environment = one emulator process; LocalStack serialises its invokes."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self._lines: list[str] = []
        self._cond = threading.Condition()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        rie, python = _tool("LOGIN_ETL_RIE"), _tool("LOGIN_ETL_LAMBDA_PYTHON")
        code = Path(self.function_version.config.code.get_unzipped_code_location())
        self.port = _free_port()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        env.update({key: str(value) for key, value in env_vars.items()})
        # The code is not at /var/task here; Python must not buffer stdout into a pipe.
        env.update(LAMBDA_TASK_ROOT=str(code), PYTHONPATH=str(code), PYTHONUNBUFFERED="1")
        command = [
            str(rie),
            "--log-level",
            "error",
            "--runtime-api-address",
            f"127.0.0.1:{_free_port()}",
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            str(python),
            "-m",
            "awslambdaric",
            str(self.function_version.config.handler),
        ]
        self.process = subprocess.Popen(
            command,
            cwd=code,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() ends the runtime too
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LambdaRuntimeException(f"emulator exited at start: {self.get_logs()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise LambdaRuntimeException("emulator did not listen in time")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    # --- addresses (all loopback: LocalStack and the function run on this host) -------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return str(config.GATEWAY_LISTEN[0].host)

    def get_runtime_endpoint(self) -> str:
        # Unused: the emulator answers the invoke itself, no callback into LocalStack is needed.
        return f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"

    # --- invocations -----------------------------------------------------------------------------
    def invoke(self, payload: dict[str, Any]) -> InvocationResult:
        request_id = str(payload["invoke-id"])
        with self._cond:
            del self._lines[:-KEEP_LINES]  # a warm environment lives long: keep only a tail
            mark = len(self._lines)
        timeout = float(self.function_version.config.timeout) + 10
        response = requests.post(
            f"http://127.0.0.1:{self.port}{INVOKE_PATH}",
            data=str(payload["payload"]).encode(),
            headers={"X-Amzn-Trace-Id": str(payload.get("trace-id", ""))},
            timeout=timeout,
            proxies={"http": "", "https": ""},
        )
        is_error = response.status_code != 200 or _is_error_document(response.content)
        deadline = time.monotonic() + LOG_TAIL_SECONDS
        with self._cond:
            while not any(line.startswith("REPORT ") for line in self._lines[mark:]):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            logs = "".join(self._lines[mark:])
        return InvocationResult(request_id, response.content, is_error=is_error, logs=logs)

    def get_logs(self) -> str:
        with self._cond:
            return "".join(self._lines)

    # --- versions --------------------------------------------------------------------------------
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        runtime = _python_runtime(_tool("LOGIN_ETL_LAMBDA_PYTHON"))
        if function_version.config.runtime != runtime:
            raise LambdaRuntimeException(
                f"this executor runs {runtime} only, not {function_version.config.runtime}"
            )
        _tool("LOGIN_ETL_RIE")
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to clean: prepare_version builds no image."""

    @classmethod
    def validate_environment(cls) -> bool:
        tools = ("LOGIN_ETL_RIE", "LOGIN_ETL_LAMBDA_PYTHON")
        return all(Path(os.environ.get(name, "")).is_file() for name in tools)


class LocalProcessExecutorPlugin(RuntimeExecutorPlugin):
    """Selected with LAMBDA_RUNTIME_EXECUTOR=login-etl-local."""

    name = "login-etl-local"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return LocalProcessExecutor
