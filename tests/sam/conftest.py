"""The SAM CLI tier's session: a namespace, a Docker engine and a PostgreSQL in it, the stand-in
base image, and `sam build`; torn down by PID, and the namespace deleted, however the run ends.

Run it with `make test-sam` (it installs Debian's docker.io, debootstrap and postgresql when
missing, and the SAM CLI). Outside CI a machine that cannot run it gets a loud skip naming the
missing piece; with LOGIN_ETL_REQUIRE_AWS_LOCAL=1 (set by .ci/run) that is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.pg import TestDB

from sam import base_image
from sam.harness import (
    GATEWAY,
    NETWORK,
    SUBNET,
    Cleanup,
    Engine,
    Namespace,
    Postgres,
    missing_pieces,
    raise_on_sigterm,
    unmount_below,
)

REPO = Path(__file__).resolve().parents[2]
FUNCTION_ID = "LoginEtlFunction"  # template.yaml's logical id; env files are keyed by it


def cannot_run(reason: str) -> None:
    if os.environ.get("LOGIN_ETL_REQUIRE_AWS_LOCAL") == "1":
        pytest.fail(f"LOGIN_ETL_REQUIRE_AWS_LOCAL=1 but the SAM tier cannot run: {reason}")
    pytest.skip(f"SAM CLI tier NOT RUN: missing {reason}")


@dataclass
class Tier:
    ns: Namespace
    engine: Engine
    pg: Postgres
    sam_bin: str
    workdir: Path
    key_spec: str

    def sam_argv(self, *args: str) -> list[str]:
        """`sam ARGS` run in the namespace, where the engine publishes the emulator's port."""
        return self.ns.enter([self.sam_bin, *args])

    @property
    def sam_env(self) -> dict[str, str]:
        return {**self.engine.env, "SAM_CLI_TELEMETRY": "0"}

    def sam(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.sam_argv(*args),
            cwd=REPO,
            env=self.sam_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def env_file(self, db: TestDB) -> Path:
        """events/env.json's settings, pointed at ``db`` with this run's key (what
        `make env-local` writes for a user), as a file for `--env-vars`."""
        values: dict[str, Any] = json.loads((REPO / "events" / "env.json").read_text())[FUNCTION_ID]
        values |= {"DATABASE_URL": self.pg.container_url(db.name), "PII_KEYS": self.key_spec}
        path = self.workdir / f"env-{db.name}.json"
        path.write_text(json.dumps({FUNCTION_ID: values}))
        return path


@pytest.fixture(scope="session")
def tier() -> Iterator[Tier]:
    sam_bin = os.environ.get("LOGIN_ETL_SAM")
    missing = missing_pieces(sam_bin)
    version = base_image.runtime_version()
    if base_image.python_prefix(version) is None:
        missing.append(f"a CPython {version} for the base image (pyenv's versions/{version}.*)")
    if missing:
        cannot_run("; ".join(missing))
    assert sam_bin is not None
    raise_on_sigterm()
    cleanup = Cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="login-etl-sam-"))
    workdir.chmod(0o711)  # the postgres user must reach its own dir below; nothing is listable
    cleanup.push("work dir", lambda: unmount_below(workdir))
    try:
        tar = base_image.ensure_rootfs_tar()
        ns = Namespace.create()
        cleanup.push(f"namespace {ns.name}", ns.delete)
        engine = Engine(ns, workdir / "engine")
        cleanup.push("dockerd", engine.stop)
        engine.start()
        base_image.import_image(engine, tar)
        engine.docker("network", "create", f"--subnet={SUBNET}", f"--gateway={GATEWAY}", NETWORK)
        pg = Postgres(ns, workdir / "pg", password=secrets.token_urlsafe(16))
        cleanup.push("postgres", pg.stop)
        pg.start()
        key_spec = f"k1:{base64.b64encode(secrets.token_bytes(64)).decode()}"
        tier = Tier(ns, engine, pg, sam_bin, workdir, key_spec)
        build = subprocess.run(
            [sam_bin, "build", "--config-env", "default"],
            cwd=REPO,
            env=tier.sam_env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert build.returncode == 0, f"sam build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
        yield tier
        assert engine.containers() == [], "a container outlived its sam command"
    finally:
        cleanup.run()


@pytest.fixture
def database(tier: Tier) -> Iterator[TestDB]:
    """A fresh, empty database on the namespace's PostgreSQL; the function migrates it itself
    (env.json sets AUTO_MIGRATE=true)."""
    db = TestDB(tier.pg.host_url)
    try:
        yield db
    finally:
        db.drop()
