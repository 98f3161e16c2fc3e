"""``drain -q`` is not silent for a long run: a counts-only progress line on stderr every ~5 s.

``-q`` drops the handler's per-batch summaries, which were the only sign of life; a long drain
then printed nothing until its end. Through the console script, against moto's SQS and the real
PostgreSQL behind a fault proxy that slows every statement, so the run lasts past 5 s however
fast the machine is.
"""

from __future__ import annotations

import io
import re

from login_etl_cli.progress import Progress
from support.bodies import login_body
from support.ledger import send
from support.pg import TestDB
from support.proxy import FaultProxy, target_of

from .conftest import QueueFactory, proxied_url, run_cli

LINE = re.compile(r"drain: received: (\d+) \(\d+/s\), (\d+) failed, (\d+) deleted")


def body(i: int) -> str:
    return login_body(i, "10.5.0")


def test_drain_quiet_prints_counts_only_progress_on_stderr(
    cli_env: dict[str, str], lambda_env: TestDB, make_queue: QueueFactory, sqs_endpoint: str
) -> None:
    queue = make_queue()
    send(queue.sqs, queue.url, [body(i) for i in range(5)])
    proxy = FaultProxy(target_of(lambda_env.url))
    proxy.delay(0.4)  # every statement >= 0.4 s: 5 batches of 4+ statements each pass 5 s
    try:
        env = {**cli_env, "DATABASE_URL": proxied_url(lambda_env, proxy)}
        result = run_cli(
            "drain",
            "-q",
            "--batch-size",
            "1",
            "--queue-url",
            queue.url,
            "--endpoint-url",
            sqs_endpoint,
            env=env,
            timeout=180,
        )
    finally:
        proxy.close()

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("drain: received:")]
    assert lines, result.stderr
    counts = [tuple(map(int, m.groups())) for m in map(LINE.fullmatch, lines) if m]
    assert len(counts) == len(lines), lines  # counts only: nothing else on the line
    assert counts == sorted(counts) and all(0 < received <= 5 for received, _, _ in counts)
    assert all(failed == 0 and deleted == received for received, failed, deleted in counts)
    assert "drained: batches=5 received=5" in result.stderr
    assert "drain: received" not in result.stdout and "10.5.0." not in result.stderr
    assert lambda_env.count("user_logins") == 5


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_lines_are_throttled_even_on_a_terminal() -> None:
    out = _Terminal()
    progress = Progress("drain: received", stream=out, delay_s=0, log_interval_s=3600, redraw=False)
    for done in range(1, 101):
        progress.update(done, "0 failed")
    progress.finish()

    assert out.getvalue().count("\n") == 1 and "\r" not in out.getvalue()
    assert out.getvalue().startswith("drain: received: 1 (")
