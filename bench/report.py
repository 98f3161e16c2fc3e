"""The report of a ``make bench`` run: the targets met or not, the table, the capacity model's inputs."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any

from harness import SHIPPED


def pycryptodome_backend() -> str:
    from Crypto.Util import _raw_api

    return str(_raw_api.backend)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem_gb = round(mem_kb / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def find(results: dict[str, Any], case: str, n: int) -> dict[str, Any] | None:
    return next((c for c in results["cases"] if c["case"] == case and c["records"] == n), None)


def targets(r: dict[str, Any], largest: int) -> list[dict[str, Any]]:
    """Issue 11's targets, then what must be kept from the first round, each measured in this run."""
    t = r["transform"]
    # The per-record costs are CPU-bound loops in this process: judged on the fastest repetition
    # (timeit's convention: slower ones measure the other processes on the two shared cores),
    # with the median beside it. The ratios below compare medians taken side by side.
    out: list[tuple[str, str, str, bool | None]] = [
        (
            "masking, unique values of the real length mix",
            "<= 2 us/field, byte-identical to MODE_SIV",
            f"{t['mask_per_field_us_min']:.2f} us/field (median {t['mask_per_field_us']:.2f}), identical on "
            f"{t['mask_fields_checked']:,}: {str(t['mask_identical_to_pycryptodome']).lower()}",
            t["mask_per_field_us_min"] <= 2 and t["mask_identical_to_pycryptodome"],
        ),
        (
            "whole transform, 10,000 records",
            "<= 6 us/record",
            f"{t['per_record_us_min']:.2f} us/record (median {t['per_record_us']:.2f})",
            t["per_record_us_min"] <= 6,
        ),
    ]
    ours_10k, limit_10k = find(r, "ours", 10_000), find(r, "limit", 10_000)
    if ours_10k and limit_10k:
        ratio = ours_10k["median_ms"] / limit_10k["median_ms"]
        out.append(("end to end vs psql \\copy, 10,000 records", "<= 3x", f"{ratio:.2f}x", ratio <= 3))
    ours_1k, naive_1k = find(r, "ours", 1000), find(r, "naive", 1000)
    if ours_1k and naive_1k:
        ratio = naive_1k["median_ms"] / ours_1k["median_ms"]
        out.append(("end to end vs naive, 1,000 records", ">= 50x", f"{ratio:.1f}x", ratio >= 50))
    c = r["cold_start"]
    shipped = c["variants"][SHIPPED]
    other = next(v for name, v in c["variants"].items() if name != SHIPPED)
    # Judged on the import's CPU time: on Lambda the function has its CPU share to itself, while
    # here wall time also counts the other processes on two shared cores (shown beside it).
    out.append(
        (
            f"handler import, deployment package ({SHIPPED})",
            "<= 100 ms (aim 60)",
            f"{shipped['import_cpu_ms_min']:.0f} ms CPU (median {shipped['import_cpu_ms']:.0f}; wall "
            f"{shipped['import_ms']:.0f}); without bytecode {other['import_cpu_ms_min']:.0f} ms CPU",
            shipped["import_cpu_ms_min"] <= 100,
        )
    )
    warm = find(r, "ours", 10)
    out.append(
        (
            f"first invocation, fresh process ({c['first_event_records']} records)",
            "measured, next to warm",
            f"{shipped['first_invocation_ms']:.0f} ms (warm: {warm['median_ms']:.1f} ms)" if warm else "",
            None,
        )
    )
    # Kept from the first round.
    fresh = find(r, "insert: ours (lookup + COPY)", 10_000)
    dup = find(r, "insert: ours, all duplicates", 10_000)
    if fresh and dup:
        ratio = dup["median_ms"] / fresh["median_ms"]
        whole = ", ".join(f"{n}: {x:.2f}x" for n, x in r["redelivery_ratio"].items())
        out.append(
            (
                "redelivery vs fresh, insert of 10,000",
                "<= 1.0x",
                f"{ratio:.2f}x (handler {whole})",
                ratio <= 1.0,
            )
        )
    trips = r["round_trips"]["fresh"]
    out.append(
        (
            "round trips per batch, constant",
            "same at every size",
            ", ".join(f"{n}: {k}" for n, k in trips.items()),
            len(set(trips.values())) == 1,
        )
    )
    boto3 = any(v["boto3_imported"] for v in c["variants"].values())
    out.append(("boto3 not imported without an ARN", "not imported", str(not boto3).lower(), not boto3))
    peak = r["memory"][f"largest ({largest})"]["peak_mb"]
    out.append((f"peak RSS, largest event ({largest})", "<= 150 MB", f"{peak:.0f} MB", peak <= 150))
    return [{"target": a, "goal": b, "measured": m, "met": ok} for a, b, m, ok in out]


def table(r: dict[str, Any]) -> str:
    limits = {c["records"]: c["median_ms"] for c in r["cases"] if c["case"] == "limit"}
    naive = {c["records"]: c["median_ms"] for c in r["cases"] if c["case"] == "naive"}
    lines = [
        "| case | records | median ms | µs/record | x limit | naive / this | round trips |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in r["cases"]:
        n = c["records"]
        vs_limit = f"{c['median_ms'] / limits[n]:.2f}" if n in limits else ""
        vs_naive = f"{naive[n] / c['median_ms']:.1f}" if n in naive and c["case"] != "naive" else ""
        lines.append(
            f"| {c['case']} | {n:,} | {c['median_ms']:.2f} | {c['per_record_us']:.2f} | {vs_limit} | "
            f"{vs_naive} | {c.get('round_trips', '')} |"
        )
    return "\n".join(lines)


def report(r: dict[str, Any]) -> str:
    t, c = r["transform"], r["cold_start"]
    out = [
        f"login-etl bench, {r['generated_at']}",
        f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['memory_gb']} GB, "
        f"Python {r['machine']['python']}",
        f"database: {r['database']['version']} via {r['database']['source']}",
        f"limit: {r['limit_method']}",
        f"pycryptodome backend: {r['settings']['pycryptodome_backend']} (what ships to Lambda has no cffi)",
        "times: median of the reps; ratios inside this run; naive only at 10 and 1,000 records",
        "",
        table(r),
        "",
        f"transform: {t['per_record_us']:.2f} µs/record, fastest {t['per_record_us_min']:.2f} "
        f"(parse+validate+version "
        f"{t['parse_validate_version_us']:.2f}), mask {t['mask_per_field_us']:.2f} µs/field, "
        f"pycryptodome MODE_SIV {t['pycryptodome_siv_per_field_us']:.2f} µs/field ({t['siv_speedup']:.1f}x)",
    ]
    ours_10k = find(r, "ours", 10_000)
    if ours_10k:
        out.append(
            f"ours, 10,000 records: {ours_10k['median_ms']:.1f} ms wall = transform "
            f"{ours_10k['transform_ms']:.1f} (inside the COPY stream) + the rest of the batch "
            f"{ours_10k['insert_ms']:.1f} (lookup, waiting for the server, COMMIT) + handler; CPU time "
            f"in this process {ours_10k['cpu_ms']:.1f} ms (the rest is PostgreSQL, and waiting for a core)"
        )
    cp = r.get("copy_payload_ms")
    if cp:
        out.append(
            f"COPY text formatting ({cp['records']:,} rows, client side, inside ours, outside the limit): "
            f"{cp['store_copy_payload']:.2f} ms"
        )
    for name, v in c["variants"].items():
        out.append(
            f"fresh process, deployment package, {name}: import {v['import_ms']:.1f} ms "
            f"(CPU {v['import_cpu_ms']:.1f} ms) + init "
            f"{v['init_ms']:.1f} ms (process {v['raw_ms']:.1f} ms, bare python "
            f"{c['bare_python_ms']:.1f} ms); first invocation {v['first_invocation_ms']:.1f} ms "
            f"(import + handler {v['first_handler_ms']:.1f} ms: connect, migration check, "
            f"{c['first_event_records']} records)"
        )
    for label, m in r["memory"].items():
        out.append(
            f"peak RSS {label}: {m['peak_mb']:.1f} MB ({m['event_bytes'] / 1e6:.2f} MB event; "
            f"{m['after_import_mb']:.1f} MB after imports)"
        )
    out += ["", "| target | goal | measured | met |", "|---|---|---|---|"]
    for x in r["targets"]:
        met = "-" if x["met"] is None else "yes" if x["met"] else "NO"
        out.append(f"| {x['target']} | {x['goal']} | {x['measured']} | {met} |")
    return "\n".join(out)


def model(r: dict[str, Any]) -> dict[str, Any]:
    """Batch latency ~ fixed + per_record * n, fitted on ours at the smallest and 10,000 records."""
    ours = sorted((c["records"], c["median_ms"]) for c in r["cases"] if c["case"] == "ours")
    (n0, t0), (n1, t1) = ours[0], next(x for x in ours if x[0] == 10_000)
    per_record_ms = (t1 - t0) / (n1 - n0)
    return {
        "fixed_ms": max(t0 - per_record_ms * n0, 0.0),
        "per_record_us": per_record_ms * 1000,
        "transform_us": r["transform"]["per_record_us"],
        "cold_start_ms": r["cold_start"]["variants"][SHIPPED]["first_invocation_ms"],
        "peak_rss_mb": max(m["peak_mb"] for m in r["memory"].values()),
        "round_trips_per_batch": r["round_trips"]["fresh"].get("10000"),
    }
