"""The handler's import costs no more than the libraries the first batch needs already cost.

The first batch needs pg8000 (``pg8000.native``), Powertools Logger and Metrics (the package's own
``__init__`` loads both), and pycryptodome's AES and CMAC. Whatever those load is paid anyway, so a
module of ours that imports, say, ``ssl``, ``ipaddress`` or ``decimal`` costs nothing (pg8000 and
scramp load them first). What is NOT paid anyway is any module that only our code brings in: the
test below names every such module, so adding one is a decision someone makes on purpose (it is
part of every cold start), not a side effect of a convenient import. Each case runs in a fresh
interpreter, since this test process has long imported everything; timing is left to ``make bench``.
"""

from __future__ import annotations

import pytest
from support.fresh import fresh_json

pytestmark = pytest.mark.timeout(120)

# What the first batch cannot do without, as the handler's modules import it.
FIRST_BATCH_LIBRARIES = (
    "aws_lambda_powertools",
    "aws_lambda_powertools.metrics",
    "Crypto.Cipher.AES",
    "Crypto.Hash.CMAC",
    "pg8000.native",
)

# Modules outside login_etl that only our code loads at import: ``dataclasses`` for the settings and
# batch value types (defined at import, used by every batch), and ``gc``, which is built in (the
# batch pauses the collector while it builds rows). Nothing else: see the module docstring.
OURS_ALONE = {"dataclasses", "gc"}

_PROBE = """
import importlib, json, sys
sys.modules["cffi"] = None  # as in the deployment package: pycryptodome falls back to ctypes
for name in sys.argv[1:]:
    importlib.import_module(name)
libraries = set(sys.modules)
import login_etl.handler
print(json.dumps({"added": sorted(set(sys.modules) - libraries), "all": sorted(sys.modules)}))
"""


def _probe(*preload: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = fresh_json(_PROBE, *preload)
    return result


def test_the_handler_import_adds_to_the_first_batch_libraries_only_our_own_modules() -> None:
    added = set(_probe(*FIRST_BATCH_LIBRARIES)["added"])
    ours = {m for m in added if m == "login_etl" or m.startswith("login_etl.")}
    assert "login_etl.handler" in ours  # the probe did import it, after the libraries
    assert added - ours == OURS_ALONE


def test_what_only_a_rare_path_needs_is_not_loaded_by_the_handler_import() -> None:
    """``LambdaContext`` is an annotation only; the Secrets Manager path (the Powertools
    parameters utility, boto3) loads only with a ``*_SECRET_ARN`` (tests/unit/test_cold_start.py)."""
    loaded = _probe()["all"]
    assert "login_etl.handler" in loaded
    deferred = ("aws_lambda_powertools.utilities.typing", "aws_lambda_powertools.utilities.parameters",
                "login_etl.secrets", "boto3", "botocore.client")  # fmt: skip
    assert [m for m in loaded if m.startswith(deferred)] == []
