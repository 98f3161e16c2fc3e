"""``login-etl demo``: the real job end to end on one machine, with no Docker, network or AWS.

An embedded PostgreSQL (or ``DATABASE_URL``), an in-process SQS API (moto) with a queue and its
DLQ, an ephemeral PII key, the exercise data (or synthetic logins) sent with SendMessageBatch,
drained through the real handler by the event-source-mapping runner, and a summary read back
from the database and the queues. Everything it started is stopped on the way out, Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from login_etl.sources import DbSource
from login_etl.store import Store, text_array

from .aws import create_queue_with_dlq, queue_depth
from .embedded import embedded_postgres, moto_sqs, use_fake_aws_credentials
from .environment import (
    demo_environment,
    drop_stray_emf,
    ephemeral_key_spec,
    logging_defaults,
    user_database_url,
)
from .errors import CliError, printable
from .progress import Progress
from .runner import DrainStats, drain_until_settled
from .sender import read_ndjson, send_bodies
from .status import QueueState, collect, queue_reader, render
from .synth import generate
from .tables import table as _table

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DemoOptions", "DemoResult", "exercise_data_path", "run_demo", "self_command"]

_EXERCISE: Final = Path("data") / "exercise_logins.ndjson"
_REGION: Final = "us-east-1"
_QUERY_CHUNK: Final = 10_000


def self_command() -> str:
    """How to run login-etl again from this shell, as printed: ``login-etl`` when that is on PATH
    and is this very program, else the path this one was started by (``.venv/bin/login-etl`` after
    ``make demo``), else ``python -m login_etl_cli.main`` with this interpreter."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name == "login-etl" and started.exists():
        on_path = shutil.which("login-etl")
        if on_path is not None and Path(on_path).resolve() == started.resolve():
            return "login-etl"
        return shlex.quote(str(started))
    return f"{shlex.quote(sys.executable)} -m login_etl_cli.main"


def exercise_data_path() -> Path:
    """The exercise data: packaged with the CLI, else the repository's ``data/`` (a source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / _EXERCISE, here.parent.parent / _EXERCISE):
        if candidate.is_file():
            return candidate
    raise CliError(
        "the exercise data (data/exercise_logins.ndjson) is not here: pass --file F.ndjson or --synthetic N"
    )


@dataclass(frozen=True)
class DemoOptions:
    """The command's options, by their parser names; their defaults live in the parser alone
    (``commands/demo.py``)."""

    file: Path | None
    synthetic: int | None
    seed: int
    invalid_ratio: float
    duplicate_ratio: float
    batch_size: int
    window_s: float
    rows: int
    verbose: bool
    #: Short so that a failing record retries, then reaches the DLQ, within seconds.
    visibility_timeout_s: int = 2
    max_receive_count: int = 3


@dataclass
class DemoResult:
    sent: int
    inserted: int
    rejected: Counter[str]
    drained: DrainStats
    busy_s: float
    dlq: int
    queued: int
    send_failures: int

    @property
    def duplicates(self) -> int:
        return max(0, self.drained.succeeded - self.inserted - sum(self.rejected.values()))

    @property
    def balanced(self) -> bool:
        """sent = inserted + rejected + in the DLQ + still queued, exactly."""
        return self.sent == self.inserted + sum(self.rejected.values()) + self.dlq + self.queued


def _bodies(opts: DemoOptions) -> tuple[list[str], str]:
    if opts.synthetic is not None:
        synth = generate(
            opts.synthetic,
            seed=opts.seed,
            invalid_ratio=opts.invalid_ratio,
            duplicate_ratio=opts.duplicate_ratio,
        )
        return synth.bodies, f"{opts.synthetic:,} synthetic logins (seed {opts.seed})"
    path = opts.file or exercise_data_path()
    bodies = list(read_ndjson(path))
    return bodies, f"{printable(path.name)} ({len(bodies):,} bodies)"


def _drain_all(sqs: SQSClient, url: str, opts: DemoOptions, sent: int) -> tuple[DrainStats, float]:
    """Drain until nothing is visible or in flight: failures get their retries, then the DLQ.

    Returns the stats and the busy time: up to each drain's last batch, without the final
    empty long poll that tells it the queue is empty.
    """
    progress = Progress("draining", sent)
    base = 0
    busy = 0.0
    last = DrainStats()

    def on_batch(stats: DrainStats) -> None:
        nonlocal last
        last = stats
        progress.update(base + stats.succeeded)

    def on_drain(part: DrainStats) -> None:
        nonlocal base, busy, last
        busy += last.elapsed_s
        last = DrainStats()
        base += part.succeeded

    total, _ = drain_until_settled(
        sqs,
        url,
        timeout_s=opts.visibility_timeout_s * (opts.max_receive_count + 1) + 30,
        batch_size=opts.batch_size,
        window_s=opts.window_s,
        on_batch=on_batch,
        on_drain=on_drain,
    )
    progress.finish()
    return total, busy


def _in_chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + _QUERY_CHUNK]) for i in range(0, len(ids), _QUERY_CHUNK)]


def _landed(store: Store, ids: Sequence[str]) -> tuple[int, Counter[str]]:
    """What this run's messages became, by message id (exact even in a shared database)."""
    inserted = 0
    rejected: Counter[str] = Counter()
    for chunk in _in_chunks(ids):
        inserted += int(
            store.query(
                "SELECT count(*) FROM user_logins WHERE message_id = ANY(CAST(:ids AS varchar[]))",
                ids=text_array(chunk),
            )[0][0]
        )
        for reason, count in store.query(
            "SELECT reason, count(*) FROM user_logins_rejected "
            "WHERE message_id = ANY(CAST(:ids AS varchar[])) GROUP BY reason",
            ids=text_array(chunk),
        ):
            rejected[str(reason)] += int(count)
    return inserted, rejected


def _sample_rows(store: Store, ids: Sequence[str], limit: int) -> list[list[Any]]:
    if limit <= 0 or not ids:
        return []
    rows: list[list[Any]] = store.query(
        "SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date "
        "FROM user_logins WHERE message_id = ANY(CAST(:ids AS varchar[])) "
        "ORDER BY masked_ip LIMIT :limit",
        ids=text_array(ids[:_QUERY_CHUNK]),
        limit=limit,
    )
    return rows


def _print_summary(
    out: TextIO, result: DemoResult, samples: list[list[Any]], key_spec: str, label: str
) -> None:
    d = result.drained
    rejected = sum(result.rejected.values())
    rate = d.received / result.busy_s if result.busy_s > 0 else 0.0
    out.write(f"\nlogin-etl demo: {label}\n\n")
    counts = [
        ("sent", result.sent),
        ("received", d.received),
        ("inserted", result.inserted),
        ("duplicates", result.duplicates),
        ("rejected", rejected),
        *((f"  {reason}", n) for reason, n in sorted(result.rejected.items())),
        ("failed (retried)", d.failed),
        ("in the DLQ", result.dlq),
        ("still queued", result.queued),
    ]
    out.write(_table([(name, f"{n:,}") for name, n in counts], ("what", "count")) + "\n\n")
    out.write(
        f"  throughput: {rate:,.0f} records/s ({d.received:,} records in {d.batches:,} batches, "
        f"{result.busy_s:.2f} s; {d.elapsed_s:.2f} s with the final empty polls)\n"
    )
    accounting = "OK" if result.balanced else "MISMATCH"
    out.write(f"  accounting (sent = inserted + rejected + DLQ + queued): {accounting}\n\n")
    if samples:
        out.write("Some rows (ip and device_id are masked):\n")
        header = ("user_id", "device_type", "masked_ip", "masked_device_id", "locale", "app_version", "date")
        out.write(_table(samples, header) + "\n\n")
        out.write(
            "The PII key of this run is ephemeral: it was generated for this demo, is not stored anywhere,\n"
            "and dies with it. To reveal a masked value above:\n"
            f"  PII_KEYS='{key_spec}' {self_command()} reveal {samples[0][2]}\n\n"
        )
    by_reason = "".join(f" rejected_{r}={n}" for r, n in sorted(result.rejected.items()))
    out.write(
        f"summary: sent={result.sent} received={d.received} inserted={result.inserted} "
        f"duplicates={result.duplicates} rejected={rejected}{by_reason} failed={d.failed} "
        f"dlq={result.dlq} queued={result.queued} elapsed_s={result.busy_s:.3f} records_per_s={rate:.0f}\n"
    )
    out.flush()


def run_demo(opts: DemoOptions, out: TextIO, err: TextIO) -> DemoResult:
    """Run the demo, print the summary on ``out`` (notes on ``err``); clean up in every case."""
    # Powertools reads its settings when the handler is imported (in drain): set them first.
    logging_defaults(level="INFO" if opts.verbose else None, default_level="WARNING", metrics=False)
    bodies, label = _bodies(opts)
    with contextlib.ExitStack() as stack:
        db_url = user_database_url()
        if db_url is None:
            err.write("starting an embedded PostgreSQL (pgserver)...\n")
            db_url = stack.enter_context(embedded_postgres())
        else:
            err.write("using the PostgreSQL at DATABASE_URL (rows this demo inserts stay there)\n")
        key_spec = ephemeral_key_spec()
        err.write(f"generated an ephemeral PII key for this run only: PII_KEYS='{key_spec}'\n")
        stack.enter_context(demo_environment(db_url, key_spec))
        store = DbSource.from_env().store()
        stack.callback(store.close)
        store.migrate()

        use_fake_aws_credentials()
        err.write("starting an in-process SQS API (moto) on 127.0.0.1...\n")
        endpoint = stack.enter_context(moto_sqs())
        import boto3

        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=_REGION)
        url, dlq_url = create_queue_with_dlq(
            sqs,
            f"login-etl-demo-{uuid.uuid4().hex[:8]}",
            visibility_timeout_s=opts.visibility_timeout_s,
            max_receive_count=opts.max_receive_count,
        )

        from login_etl import handler  # after logging_defaults: Powertools reads env at import

        stack.callback(handler.reset)  # closes the handler's connection before Postgres stops

        progress = Progress("sending", len(bodies))
        sent = send_bodies(sqs, url, bodies, on_progress=progress.update)
        progress.finish()
        for failure in sent.failures:
            err.write(f"error: body {failure.index + 1} was not sent: {failure.code} {failure.message}\n")
        with contextlib.nullcontext() if opts.verbose else drop_stray_emf():
            stats, busy_s = _drain_all(sqs, url, opts, sent.sent)
        ids = [sent.message_ids[i] for i in sorted(sent.message_ids)]
        inserted, rejected = _landed(store, ids)
        dlq_visible, dlq_in_flight = queue_depth(sqs, dlq_url)
        visible, in_flight = queue_depth(sqs, url)
        result = DemoResult(
            sent=sent.sent,
            inserted=inserted,
            rejected=rejected,
            drained=stats,
            busy_s=busy_s,
            dlq=dlq_visible + dlq_in_flight,
            queued=visible + in_flight,
            send_failures=len(sent.failures),
        )
        _print_summary(out, result, _sample_rows(store, ids, opts.rows), key_spec, label)
        _print_status(out, store, queue_reader(sqs, boto3.client("cloudwatch", endpoint_url=endpoint), url))
    return result


def _print_status(out: TextIO, store: Store, reader: Callable[[datetime], QueueState]) -> None:
    """End where an operator would start: `login-etl status` on the demo's database and queue."""
    out.write("\nWhat `login-etl status --queue-url <the demo queue>` shows now:\n\n")
    encoding = (getattr(out, "encoding", None) or "ascii").lower()
    out.write(render(collect(store.query, days=None, queue_reader=reader), ascii_only="utf" not in encoding))
    out.flush()
