"""Ledger round trips per poll and per forwarder batch of 10 (`make measure-roundtrips`).

The real handlers run on a local stack (moto for SQS and secrets, DynamoDB Local for the ledger,
the Traede sandbox, the local receiver). A botocore `before-send` hook on the handlers' boto3
session counts every HTTP request to DynamoDB, retries included, by operation. Scenarios:

* `poll 10 new`: one poll that claims 10 new orders (one export page);
* `batch 10 new`: one forwarder batch of those 10: read, delivery lease, POST, delivery record,
  mark, mark record;
* `batch 10 new, mark fails`: the next 10, while Traede answers 503: delivered, not marked;
* `batch 10 redelivered`: those 10 again (SQS redelivers them): delivered but not marked, so only
  marked.

The sandbox holds `--orders` orders, some of them not pending (drafts, closed): enough for two
batches of 10. `python -m traede_bench.measure_roundtrips [--orders 40] [--json] [--doc FILE]`
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traede_bench import doc
from traede_export import wiring
from traede_local.dynamodb_local import start_dynamodb_local
from traede_local.local_stack import LocalOptions, LocalStack, start_moto


class Calls:
    """Counts DynamoDB requests on the wire, by operation."""

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        self.by_operation[target.rsplit(".", 1)[-1] or "?"] += 1

    def take(self) -> dict[str, int]:
        taken = dict(sorted(self.by_operation.items()))
        self.by_operation.clear()
        return taken


def measure(orders: int, moto_endpoint: str, dynamodb_endpoint: str) -> dict[str, dict[str, int]]:
    calls = Calls()
    # Clients copy their session's event hooks when created: register before the cold starts.
    wiring._aws_session().events.register("before-send.dynamodb", calls)
    rows: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as store:
        options = LocalOptions(orders=orders, store_dir=Path(store))
        stack = LocalStack(options, moto_endpoint=moto_endpoint, dynamodb_endpoint=dynamodb_endpoint)
        stack.start()
        try:
            sandbox = stack.sandbox
            assert sandbox is not None
            source = stack.event_source()
            stack.poller.cold_start()
            stack.forwarder.cold_start()
            calls.take()  # the stack's own setup (table creation) does not count
            result = stack.poll()
            rows[f"poll {result['fetched']} new"] = calls.take()
            handled = source.poll_once()
            rows[f"batch {handled} new"] = calls.take()
            sandbox.faults.error_rate = 1.0  # Traede answers 503: delivered, but not marked
            handled = source.poll_once()
            sandbox.faults.error_rate = 0.0
            rows[f"batch {handled} new, mark fails"] = calls.take()
            time.sleep(stack.options.visibility_timeout + 0.5)  # the failed records come back
            handled = source.poll_once()
            rows[f"batch {handled} redelivered"] = calls.take()
        finally:
            stack.stop()
    return rows


def markdown(rows: dict[str, dict[str, int]]) -> str:
    lines = ["| scenario | round trips | by operation |", "|---|---:|---|"]
    for name, ops in rows.items():
        lines.append(f"| {name} | {sum(ops.values())} | " + ", ".join(f"{op} {n}" for op, n in ops.items()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=40, help="orders in the sandbox (default 40)")
    parser.add_argument("--json", action="store_true")
    doc.add_option(parser, "roundtrips")
    args = parser.parse_args(argv)
    dynamodb = start_dynamodb_local()
    moto = start_moto()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' logs and metrics
            rows = measure(args.orders, os.environ["AWS_ENDPOINT_URL"], dynamodb.endpoint)
    finally:
        moto.stop()
        dynamodb.stop()
    if args.doc:
        doc.write_block(args.doc, "roundtrips", markdown(rows))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'scenario':26} {'round trips':>11}  by operation")
    for name, ops in rows.items():
        detail = ", ".join(f"{op} {n}" for op, n in ops.items())
        print(f"{name:26} {sum(ops.values()):>11}  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
