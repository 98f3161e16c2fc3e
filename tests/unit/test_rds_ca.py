"""`make rds-ca` uses the RDS CA bundle only when its SHA-256 is the recorded one.

The bundle is served from a local file (curl reads file:// URLs), so nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def make(tmp: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-s", *targets,
         f"RDS_CA_URL=file://{tmp / 'served.pem'}",
         f"RDS_CA_SHA256_FILE={tmp / 'bundle.sha256'}",
         f"RDS_CA_OUT={tmp / 'bundle.pem'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Path:
    if shutil.which("curl") is None or shutil.which("make") is None:
        pytest.fail("curl and make are needed (make rds-ca uses curl)")
    (tmp_path / "served.pem").write_text(BUNDLE)
    return tmp_path


def test_the_recorded_checksum_lets_the_bundle_in(served: Path) -> None:
    (served / "bundle.sha256").write_text(hashlib.sha256(BUNDLE.encode()).hexdigest() + "\n# note\n")
    result = make(served, "rds-ca")
    assert result.returncode == 0, result.stderr
    assert (served / "bundle.pem").read_text() == BUNDLE


@pytest.mark.parametrize("recorded", ["0" * 64 + "\n", None], ids=["another checksum", "no record"])
def test_any_other_bundle_is_refused_and_not_installed(served: Path, recorded: str | None) -> None:
    if recorded is not None:
        (served / "bundle.sha256").write_text(recorded)
    result = make(served, "rds-ca")
    assert result.returncode != 0
    assert "not the recorded" in result.stderr and "make rds-ca-accept" in result.stderr
    assert not (served / "bundle.pem").exists()


def test_accepting_records_the_checksum_for_the_next_fetch(served: Path) -> None:
    assert make(served, "rds-ca").returncode != 0
    accepted = make(served, "rds-ca-accept")
    assert accepted.returncode == 0, accepted.stderr
    assert (served / "bundle.sha256").read_text().split("\n")[0] == hashlib.sha256(
        BUNDLE.encode()
    ).hexdigest()
    (served / "bundle.pem").unlink()
    assert make(served, "rds-ca").returncode == 0
