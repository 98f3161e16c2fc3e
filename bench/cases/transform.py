"""**transform**: ``process_batch`` with a store that writes nothing; parsing and masking alone."""

from __future__ import annotations

from typing import Any

from harness import Bench, median, say, timed


def run(bench: Bench, records: list[Any]) -> list[Any]:
    from login_etl.batch import process_batch
    from login_etl.constants import AD_DEVICE_ID, AD_IP
    from login_etl.pii import KeyRing
    from login_etl.records import parse_logins
    from login_etl.store import WriteResult
    from naive import NaiveMasker

    ring = KeyRing.from_spec(bench.key_spec)
    kept: list[Any] = []

    class NoStore:  # the write is measured elsewhere; here only the per-record work counts
        def write_batch(bench, pending: Any) -> Any:
            kept[:] = [row for chunk in pending.chunks(()) for row in chunk]
            return WriteResult(len(kept), 0, len(pending.rejects()), 0)

    n = len(records)
    reps = 3 if bench.quick else 15  # the fastest of these is the figure judged (see targets)
    per_record = [process_batch(records, ring, NoStore()).transform_ms * 1000 / n for _ in range(reps)]
    bodies = [r["body"] for r in records]
    parse = [t * 1e6 / n for t in timed(lambda: parse_logins(bodies), reps)]
    logins = [x for x in parse_logins(bodies) if not isinstance(x, Exception)]
    assert len(logins) == n
    # Unique values of the real length mix (dotted quads, ddd-dd-dddd device ids), masked the
    # way process_batch masks them: each field of the whole batch in one call.
    ips = [x.ip for x in logins]
    devices = [x.device_id for x in logins]
    fields = [(v, AD_IP) for v in ips] + [(v, AD_DEVICE_ID) for v in devices]
    mask_many = ring.mask_many
    batch = [
        t * 1e6 / len(fields)
        for t in timed(lambda: (mask_many(ips, AD_IP), mask_many(devices, AD_DEVICE_ID)), reps)
    ]
    mask = ring.mask
    single = [t * 1e6 / len(fields) for t in timed(lambda: [mask(v, ad) for v, ad in fields], reps)]
    siv = NaiveMasker("k1", bench.key)
    some = fields[: len(fields) // 10]
    theirs = [t * 1e6 / len(some) for t in timed(lambda: [siv.mask(v, ad) for v, ad in some], 3)]
    # Byte identity with pycryptodome's MODE_SIV, on every field of the batch.
    masked = mask_many(ips, AD_IP) + mask_many(devices, AD_DEVICE_ID)
    identical = all(siv.mask(v, ad) == m for (v, ad), m in zip(fields, masked, strict=True))
    lengths = sorted(len(v.encode()) for v, _ in fields)
    bench.results["transform"] = {
        "records": n,
        "per_record_us": median(per_record),
        "per_record_us_min": min(per_record),
        "parse_validate_version_us": median(parse),
        "mask_per_field_us": median(batch),
        "mask_per_field_us_min": min(batch),
        "mask_single_per_field_us": median(single),
        "mask_identical_to_pycryptodome": identical,
        "mask_fields_checked": len(fields),
        "field_bytes": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]},
        "pycryptodome_siv_per_field_us": median(theirs),
        "siv_speedup": median(theirs) / median(batch),
    }
    t = bench.results["transform"]
    say(
        f"  transform {t['per_record_us']:.2f} us/record (parse+validate+version "
        f"{t['parse_validate_version_us']:.2f}); mask {t['mask_per_field_us']:.2f} us/field batched, "
        f"{t['mask_single_per_field_us']:.2f} one by one, vs pycryptodome "
        f"{t['pycryptodome_siv_per_field_us']:.2f} ({t['siv_speedup']:.1f}x); identical: "
        f"{t['mask_identical_to_pycryptodome']}"
    )
    return kept
