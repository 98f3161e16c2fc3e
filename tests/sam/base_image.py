"""The local stand-in for the AWS Lambda base image that `sam local invoke` runs the function in.

No registry can be reached here, so `public.ecr.aws/lambda/python:<version>-x86_64` is built from
Debian (debootstrap), the CPython that matches the template's Runtime, and awslambdaric from
PyPI, by build_base_image.sh. The root file system is cached as a tar outside the clone, keyed
on the script and its inputs, so only the first run pays for debootstrap; each run imports it
into its own throwaway engine under the ECR name SAM CLI looks for.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from sam.harness import Engine

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPT = HERE / "build_base_image.sh"
AWSLAMBDARIC_VERSION = "4.2.2"
DEBIAN_SUITE = "bookworm"  # named in the script too; part of the key through the script's bytes


def cache_root() -> Path:
    return Path(os.environ.get("LOGIN_ETL_CACHE") or Path.home() / ".cache" / "login-etl")


def runtime_version() -> str:
    """'3.12' from the template's `Runtime: python3.12`."""
    match = re.search(r"^\s*Runtime:\s*python(\d+\.\d+)\s*$", (REPO / "template.yaml").read_text(), re.M)
    assert match, "template.yaml has no python Runtime"
    return match.group(1)


def image_name() -> str:
    return f"public.ecr.aws/lambda/python:{runtime_version()}-x86_64"


def python_prefix(version: str) -> Path | None:
    """An installed CPython of ``version`` to copy into /var/lang: pyenv's, on this machine image."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = [p for p in root.glob(f"versions/{version}.*") if (p / "bin" / f"python{version}").exists()]
    found.sort(key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()))
    return found[-1] if found else None


def cache_key(prefix: Path) -> str:
    inputs = [SCRIPT.read_bytes(), prefix.name.encode(), AWSLAMBDARIC_VERSION.encode()]
    return hashlib.sha256(b"\0".join(inputs)).hexdigest()[:16]


def ensure_rootfs_tar() -> Path:
    """The cached root file system tar, built first if this key has none (under flock, so two
    runs at once build it once)."""
    version = runtime_version()
    prefix = python_prefix(version)
    if prefix is None:
        raise RuntimeError(f"no CPython {version} to put in the image (looked in pyenv's versions/)")
    cache = cache_root() / "lambda-base"
    cache.mkdir(parents=True, exist_ok=True)
    tar = cache / f"python{version}-x86_64-{cache_key(prefix)}.tar"
    build = f'test -f "{tar}" || "{SCRIPT}" "{tar}" "{prefix}" {AWSLAMBDARIC_VERSION} "{cache / "apt"}"'
    subprocess.run(["flock", str(cache / ".lock"), "bash", "-euc", build], check=True)
    return tar


def import_image(engine: Engine, tar: Path) -> str:
    """Import the root fs with the AWS image's environment, under the ECR name, into ``engine``."""
    name = image_name()
    version = runtime_version()
    changes = [
        "ENV LANG=en_US.UTF-8",
        "ENV TZ=:/etc/localtime",
        "ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib"
        ":/var/task:/var/task/lib:/opt/lib",
        "ENV LAMBDA_TASK_ROOT=/var/task",
        "ENV LAMBDA_RUNTIME_DIR=/var/runtime",
        "WORKDIR /var/task",
        'ENTRYPOINT ["/lambda-entrypoint.sh"]',
    ]
    args = [arg for change in changes for arg in ("--change", change)]
    engine.docker("import", *args, "-m", f"stand-in for the Lambda python{version} image", str(tar), name)
    return name
