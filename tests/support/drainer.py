"""A drainer process for the reliability suite: ``runner.drain`` in its own process, like one Lambda
container (the handler holds one connection per process, so concurrent drainers are processes).

    python tests/support/drainer.py QUEUE_URL ENDPOINT_URL [--forever] [--redeliver P] [--seed S]

- ``--forever`` drains until SIGTERM (then finishes the batch in hand), else until a receive is
  empty;
- ``--redeliver P`` reports a fraction ``P`` of first deliveries failed after the handler
  committed them, as a function that died after COMMIT but before answering would: SQS
  redelivers them and the second delivery must count as a duplicate, never a second row.

The configuration comes from the environment (``DATABASE_URL``, ``PII_KEYS``, AWS variables).
On exit it prints one JSON line with the ``DrainStats`` and how many redeliveries it forced.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import signal
import sys
import threading
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("queue_url")
    parser.add_argument("endpoint_url")
    parser.add_argument("--forever", action="store_true")
    parser.add_argument("--redeliver", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import boto3
    from login_etl.handler import lambda_handler
    from login_etl_cli.runner import drain

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rng = random.Random(args.seed)
    forced = 0

    def handler(event: dict[str, Any], context: Any) -> Any:
        nonlocal forced
        response = lambda_handler(event, context)
        if args.redeliver <= 0:
            return response
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for record in event["Records"]:
            first = record["attributes"].get("ApproximateReceiveCount") == "1"
            if first and record["messageId"] not in failed and rng.random() < args.redeliver:
                failed.add(record["messageId"])
                forced += 1
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failed)]}

    sqs = boto3.client("sqs", endpoint_url=args.endpoint_url)
    stats = drain(
        sqs, args.queue_url, batch_size=10, until_empty=not args.forever, stop=stop, handler=handler
    )
    print(json.dumps({"stats": dataclasses.asdict(stats), "forced_redeliveries": forced}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
