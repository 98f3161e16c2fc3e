"""The compose targets say what is wrong when `docker compose` is not Compose v2, instead of
Docker's own "unknown shorthand flag: 'd' in -d", and run nothing else (LocalStack's compose mode:
a Docker engine answers, its Compose plugin does not).

A fake `docker` / `docker-compose` on PATH stands in for each installation a newcomer may have;
it records how it was called, so the test sees that `compose up` was never attempted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What `<compose> version --short` prints on each installation, and its exit status.
INSTALLS = {
    "docker without the v2 plugin": ("docker", "docker: 'compose' is not a docker command.", 1),
    "docker-compose v1": ("docker-compose", "1.29.2", 0),
    "nothing": (None, "", 127),
}


def fake(bin_dir: Path, name: str, version_output: str, status: int, log: Path) -> None:
    script = bin_dir / name
    script.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {log}\n'
        'if [[ "$*" == *"version --short"* ]]; then\n'
        f"  echo {version_output!r}; exit {status}\n"
        "fi\n"
        "exit 0\n"
    )
    script.chmod(0o755)


def make(target: str, bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    argv = ["make", "--no-print-directory", target, "LOCALSTACK_MODE=compose", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("install", sorted(INSTALLS))
@pytest.mark.parametrize("target", ["up", "down"])
def test_a_compose_not_v2_gets_a_hint_and_nothing_runs(install: str, target: str, tmp_path: Path) -> None:
    name, output, status = INSTALLS[install]
    log = tmp_path / "calls.log"
    log.touch()
    if name is not None:
        fake(tmp_path, name, output, status, log)
    # "nothing": a program that exists nowhere, so a real Docker on this machine is never run.
    compose = {"docker-compose": "docker-compose", None: "login-etl-no-such-docker compose"}.get(
        name, "docker compose"
    )

    result = make(target, tmp_path, f"COMPOSE={compose}")

    assert result.returncode != 0
    assert f"error: '{compose}' is not Docker Compose v2" in result.stderr
    assert "docker-compose-plugin" in result.stderr
    assert "unknown shorthand flag" not in result.stderr
    assert all("version --short" in call for call in log.read_text().splitlines())


def test_compose_v2_passes_the_check_and_the_target_runs(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    fake(tmp_path, "docker", "2.27.0", 0, log)

    result = make("up", tmp_path)

    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["compose version --short", "compose up -d --wait"]
