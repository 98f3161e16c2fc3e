"""Fresh processes on the deployment package alone: cold start and peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from harness import COLD_CHILD, HIDE_CFFI, Bench, deployment_package, median, say


def run_cold_start(bench: Bench, event: dict[str, Any]) -> None:
    """Fresh processes on the deployment package alone (what function/Makefile builds: function/
    and function/requirements.txt, no dev-only packages such as cffi), in two forms: as shipped,
    with bytecode, and without (what SAM's pip builder would ship: /var/task is read-only, so
    every cold start would compile every module it imports)."""
    path = str(deployment_package())
    event_path = bench.tmp / "first_event.json"
    event_path.write_text(json.dumps(event))
    variants = {
        # -I -S: none of this venv's site-packages, no user site, no PYTHON* variables. The
        # package's own .pyc files (what the build ships) are used as they are; for the form
        # without bytecode, Python looks for .pyc only under an empty prefix and writes none.
        "precompiled": [sys.executable, "-I", "-S", "-B"],
        "no bytecode": [sys.executable, "-I", "-S", "-B", "-X", f"pycache_prefix={bench.tmp / 'none'}"],
    }
    reps = 5 if bench.quick else 11
    init_env = bench.child_env(AUTO_MIGRATE="false")
    first_env = bench.child_env(AUTO_MIGRATE="true")
    # Warm the OS page cache for both forms.
    for argv in variants.values():
        subprocess.run([*argv, "-c", COLD_CHILD, path, "init"], env=init_env, check=True, capture_output=True)
    out: dict[str, Any] = {"reps": reps, "python_flags": "-I -S", "variants": {}}
    bare: list[float] = []
    for name, argv in variants.items():
        raw: list[float] = []
        inner: list[dict[str, Any]] = []
        first: list[dict[str, Any]] = []
        for _ in range(reps):  # interleaved with a bare interpreter, so both see the same noise
            started = time.perf_counter()
            subprocess.run([*argv, "-c", "pass"], env=init_env, check=True)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = subprocess.run(
                [*argv, "-c", COLD_CHILD, path, "init"],
                env=init_env,
                check=True,
                capture_output=True,
                text=True,
            )
            raw.append(time.perf_counter() - started)
            inner.append(json.loads(result.stdout.splitlines()[-1]))
            bench.truncate()
            result = subprocess.run(
                [*argv, "-c", COLD_CHILD, path, "first", str(event_path)],
                env=first_env,
                check=True,
                capture_output=True,
                text=True,
            )
            first.append(json.loads(result.stdout.splitlines()[-1]))
        out["variants"][name] = {
            "raw_ms": median(raw) * 1000,
            "import_ms": median([i["import_ms"] for i in inner]),
            "import_cpu_ms": median([i["import_cpu_ms"] for i in inner]),
            "import_cpu_ms_min": min(i["import_cpu_ms"] for i in inner),
            "init_ms": median([i["init_ms"] for i in inner]),
            "first_invocation_ms": median([f["first_ms"] for f in first]),
            "first_handler_ms": median([f["handler_ms"] for f in first]),
            "boto3_imported": any(i["boto3"] or f["boto3"] for i, f in zip(inner, first, strict=True)),
            "botocore_client_imported": any(i["botocore_client"] for i in inner),
        }
    out["bare_python_ms"] = median(bare) * 1000
    out["first_event_records"] = len(event["Records"])
    bench.results["cold_start"] = out
    for name, v in out["variants"].items():
        say(
            f"  {name}: import {v['import_ms']:.1f} ms (CPU {v['import_cpu_ms']:.1f}) "
            f"+ init {v['init_ms']:.1f} "
            f"(process {v['raw_ms']:.1f}, bare python {out['bare_python_ms']:.1f}); first invocation "
            f"{v['first_invocation_ms']:.1f} ms (handler {v['first_handler_ms']:.1f}); "
            f"boto3 imported: {v['boto3_imported']}"
        )


def run_peak_rss(bench: Bench, events: dict[str, dict[str, Any]]) -> None:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child would report
    # this (bigger) bench process's peak.
    code = HIDE_CFFI + (
        "import json, sys\n"
        "from login_etl import handler\n"
        "from login_etl_cli.context import LocalContext\n"
        "def vm(key):\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(x.split()[1]) for x in f if x.startswith(key + ':'))\n"
        "base = vm('VmHWM')\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    event = json.loads(f.read())  # as the Lambda runtime does with the payload\n"
        "response = handler.lambda_handler(event, LocalContext())\n"
        "assert not response['batchItemFailures']\n"
        "peak = vm('VmHWM')\n"
        "print(json.dumps({'after_import_mb': base / 1024, 'peak_mb': peak / 1024}))\n"
    )
    memory: dict[str, Any] = {}
    for label, event in events.items():
        path = bench.tmp / f"event_{label}.json"
        path.write_text(json.dumps(event, separators=(",", ":")))
        bench.truncate()
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            env=bench.child_env(AUTO_MIGRATE="false"),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        got = json.loads(out.splitlines()[-1])
        memory[label] = {
            "records": len(event["Records"]),
            "event_bytes": path.stat().st_size,
            **got,
        }
        say(f"  peak RSS {label}: {got['peak_mb']:.1f} MB (imports {got['after_import_mb']:.1f} MB)")
    bench.results["memory"] = memory
