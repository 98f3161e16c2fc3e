"""Every `sam build` the Makefiles run finds the python of the template's Runtime, one way.

`sam build` of a ``Runtime: pythonX.Y`` function needs pythonX.Y on PATH. The Makefiles put it
there for build, deploy, deploy-localstack and test-sam from one definition, derived from the
template, so changing the Runtime changes what every path looks for; and a missing one stops a
build with a message naming it, not a failure deep inside `sam build`.

The real Makefiles run (``make -n``: recipes printed, the variables really computed) in a copy of
the project whose template names a version, against a pyenv root holding a python of it; PATH
has none (only /usr/bin and /bin, whose python is not one of these versions).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Versions no /usr/bin has here; each is found only through the fake pyenv root.
VERSIONS = ["3.12", "3.10", "3.19"]
BUILDS = {
    "build": r"/bin/sam build ",
    "deploy": r"/bin/sam build ",
    "deploy-localstack": r"/bin/samlocal build ",
    "test-sam": r"LOGIN_ETL_SAM=",
}


def _project(tmp_path: Path, version: str) -> Path:
    """A copy of what the Makefiles read, with the template's Runtime set to ``version``."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Makefile", "samconfig.toml", "pyproject.toml", "requirements-dev.lock"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "mk", root / "mk")
    (root / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "localstack_host.py", root / "scripts")
    template = (REPO / "template.yaml").read_text()
    assert template.count("Runtime: python3.12") == 1
    (root / "template.yaml").write_text(template.replace("Runtime: python3.12", f"Runtime: python{version}"))
    return root


def _pyenv(tmp_path: Path, versions: list[str]) -> Path:
    """A pyenv root whose pythonX.Y are small scripts that run this interpreter (so they run)."""
    root = tmp_path / "pyenv"
    for version in versions:
        bin_dir = root / "versions" / f"{version}.7" / "bin"
        bin_dir.mkdir(parents=True)
        python = bin_dir / f"python{version}"
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
    return root


def _make(project: Path, pyenv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "PYENV"))},
        "PATH": "/usr/bin:/bin",
        "PYENV_ROOT": str(pyenv),
        "HOME": str(project.parent),
    }
    # PY: the interpreter that runs the Makefiles' helpers (any Python >= 3.11).
    return subprocess.run(
        ["make", "--no-print-directory", f"PY={sys.executable}", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(autouse=True)
def _have_make() -> None:
    if shutil.which("make") is None:
        pytest.fail("GNU make is needed (the project's entry points are make targets)")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", sorted(BUILDS))
def test_every_sam_build_has_the_runtimes_python_first_on_path(
    tmp_path: Path, version: str, target: str
) -> None:
    project = _project(tmp_path, version)
    pyenv = _pyenv(tmp_path, VERSIONS)
    done = _make(project, pyenv, "-n", target)
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stdout.splitlines() if re.search(BUILDS[target], x)]
    assert line.startswith(f'PATH="{pyenv}/versions/{version}.7/bin:$PATH" ') or (
        f' PATH="{pyenv}/versions/{version}.7/bin:$PATH" ' in line
    ), line
    assert line.count("PATH=") == 1, line  # one definition, not one prepended to another


@pytest.mark.parametrize("target", ["build", "deploy", "deploy-localstack"])
def test_a_build_checks_for_the_runtimes_python_first(tmp_path: Path, target: str) -> None:
    project, pyenv = _project(tmp_path, "3.12"), _pyenv(tmp_path, ["3.12"])
    lines = _make(project, pyenv, "-n", target).stdout.splitlines()
    check = [i for i, x in enumerate(lines) if x.endswith("scripts/localstack_host.py python-dir")]
    build = [i for i, x in enumerate(lines) if re.search(BUILDS[target], x)]
    assert check and build and check[0] < build[0], lines
    # A container build brings its own python: no check.
    done = _make(project, pyenv, "-n", target, "SAM_BUILD_FLAGS=--use-container")
    assert done.returncode == 0, done.stderr
    assert "python-dir" not in done.stdout


def test_a_missing_python_stops_the_build_with_its_name(tmp_path: Path) -> None:
    project = _project(tmp_path, "3.19")
    # The SAM CLI's venv is there (its stamp), so `make build` goes straight to the check.
    sam_venv = tmp_path / "sam-venv"
    (sam_venv / "bin").mkdir(parents=True)
    (sam_venv / ".installed-stamp").touch()
    done = _make(project, _pyenv(tmp_path, ["3.12"]), "build", f"SAM_VENV={sam_venv}")
    assert done.returncode != 0
    assert "`sam build` needs python3.19 (template.yaml: `Runtime: python3.19`)" in done.stderr, done.stderr
    assert "SAM_BUILD_FLAGS=--use-container" in done.stderr
    assert "sam build" not in done.stdout  # stopped before it


def test_lambda_python_prints_where_it_found_it(tmp_path: Path) -> None:
    pyenv = _pyenv(tmp_path, ["3.10", "3.12"])
    done = _make(_project(tmp_path, "3.10"), pyenv, "lambda-python")
    assert (done.returncode, done.stdout) == (0, f"{pyenv}/versions/3.10.7/bin\n"), done.stderr
