"""`python -m traede_bench [--quick] [--out DIR] [--doc FILE]` (`make bench`): see the package docstring."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traede_bench import doc, report, scenarios
from traede_bench.timing import Recorder, install


def run(plan: scenarios.Plan, out: Path, output_bytes: Any) -> dict[str, Any]:
    from traede_local.dynamodb_local import dynamodb_local
    from traede_local.local_stack import MotoProcess

    started = time.monotonic()
    workdir = out / ".work"
    workdir.mkdir(parents=True, exist_ok=True)
    recorder = install(Recorder())  # before any handler's cold start
    results: dict[str, Any] = {"plan": plan.__dict__}
    # The big poll's queue is emptied by PurgeQueue (see scenarios.big_poll); AWS allows one a minute.
    os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"
    moto = MotoProcess()
    try:
        with dynamodb_local() as dynamodb:
            servers = scenarios.Servers(moto=moto.start(), dynamodb=dynamodb)
            print("cold-start imports (fresh interpreters)...", file=sys.stderr)
            results["init"] = scenarios.init_times(plan, recorder, servers)
            print(
                f"forwarder: {plan.overhead_batches} batches instant, {plan.ratio_orders} orders at "
                f"{plan.latency * 1000:.0f} ms...",
                file=sys.stderr,
            )
            # As the previous benchmark ran it: the receiver in this process, DynamoDB Local cold.
            results["forwarder_before"] = scenarios.forwarder_batches(plan, recorder, servers, output_bytes)
            recorder.clear()
            print(f"warming DynamoDB Local up ({plan.warm_up_rounds} rounds)...", file=sys.stderr)
            results["warm_up"] = scenarios.warm_up(servers, plan.warm_up_rounds)
            print("forwarder again: the receiver in a process of its own, DynamoDB Local warm...", file=sys.stderr)
            receiver = scenarios.ReceiverProcess()
            try:
                results["forwarder"] = scenarios.forwarder_batches(plan, recorder, servers, output_bytes, receiver)
            finally:
                receiver.stop()
            recorder.clear()
            print(f"one poll of {plan.big_poll:,} orders...", file=sys.stderr)
            results["poll"] = scenarios.big_poll(plan, recorder, servers, workdir)
    finally:
        moto.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    results["run_seconds"] = time.monotonic() - started
    results["setup"] = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "aws": "moto in a process of its own for SQS and Secrets Manager; DynamoDB Local (its own JVM) for the ledger",
        "poller": "the real handler in a fresh interpreter, invoked once",
        "forwarder": "the real handler through the local stack's SQS event source, one batch at a time; "
        "the receiving system in a process of its own, DynamoDB Local warmed up first (forwarder_before: "
        "the receiver in the benchmark's process, DynamoDB Local cold)",
    }
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m traede_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (about 15 s)")
    parser.add_argument("--poll-orders", type=int, help="orders in the one-poll measurement (default 10,000)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    doc.add_option(parser, "bench")
    args = parser.parse_args(argv)
    if args.doc and (args.quick or args.poll_orders):
        parser.error("--doc records the full run only (no --quick, no --poll-orders)")
    args.out.mkdir(parents=True, exist_ok=True)
    plan = scenarios.QUICK if args.quick else scenarios.FULL
    if args.poll_orders:
        plan = dataclasses.replace(plan, big_poll=args.poll_orders)
    # The handlers print JSON logs and metrics; they go to a file, so the table stays readable.
    with (args.out / "handler-stdout.log").open("w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        results = run(plan, args.out, lambda: (sink.flush(), sink.tell())[1])
    paths = report.write(results, args.out)
    print(paths[1].read_text(encoding="utf-8"))
    if args.doc:
        doc.write_block(args.doc, "bench", doc.demote(paths[1].read_text(encoding="utf-8")))
        paths.append(args.doc)
    print(f"run took {results['run_seconds']:.0f} s; wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
