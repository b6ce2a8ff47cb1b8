"""`traede-export replay`: put production-order JSON files on the order queue."""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from traede_ops import ops, where
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, progress, show
from traede_ops.parser import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="order files or directories of them")
    p.add_argument("--dry-run", action="store_true", help="validate only; send nothing (needs no AWS access)")
    p.add_argument(
        "--allow-samples",
        action="store_true",
        help="send test events (the bundled samples) to a deployed stack too: the ERP receives them, Traede not",
    )


def run(args: argparse.Namespace) -> int:
    from traede_export.claim_check import ClaimCheck
    from traede_export.queue import QueueWriter
    from traede_ops.replay import new_run_id, order_files, replay

    writer = None
    target = None
    claims = None
    loopback = False
    if not args.dry_run:
        target = where.target(args)
        target.need("queue_url", "system_id")
        sqs = ops.client("sqs", target.region)
        loopback = ops.loopback_queue(sqs)
        writer = QueueWriter(sqs, target.value("queue_url"))
        if target.bucket:  # large orders go through S3 as the poller sends them
            claims = ClaimCheck(ops.client("s3", target.region), target.bucket)
    files = [str(p) for p in order_files(args.paths)]
    run_id = new_run_id()
    with progress(args, "files", total=len(files)) as advance:
        system_id = (target.system_id or "") if target else ""
        # A sample is safe for Traede anywhere (never marked), but puts a fictional order in a real ERP.
        allowed = args.dry_run or args.allow_samples or loopback
        reports = replay(files, writer, system_id, advance, run_id, claims, samples_allowed=allowed)
    sent = sum(len(r.sent) for r in reports)
    bad = [r for r in reports if not r.ok]
    ok = not bad
    data = {
        "ok": ok,
        "dry_run": args.dry_run,
        "run_id": run_id,
        "queue_url": target.queue_url if target else None,
        "files": [r.as_dict() for r in reports],
        "orders_sent": sent,
        "files_failed": len(bad),
    }
    table = Table(title="replay" + (" (dry run: validated, nothing sent)" if args.dry_run else f" {run_id}"))
    for column in ("file", "orders", "sent" if not args.dry_run else "valid", "result"):
        table.add_column(column)
    for r in reports:
        ids = ", ".join(map(str, r.orders[:8])) + (f" (+{len(r.orders) - 8})" if len(r.orders) > 8 else "")
        error = r.error or "; ".join(f"{k}: {v}" for k, v in r.failed.items())
        result = "[green]ok[/]" if r.ok else f"[red]{escape(error)}[/]"
        count = str(len(r.orders)) if args.dry_run else f"{len(r.sent)}/{len(r.orders)}"
        table.add_row(escape(r.path), ids, count if r.error is None else "-", result)
    show(args, data, table)
    if not args.json:
        verb = "validated" if args.dry_run else "sent"
        total = sum(len(r.orders) for r in reports) if args.dry_run else sent
        console.print(f"{verb} {total} order(s) from {len(reports) - len(bad)} file(s); {len(bad)} file(s) failed")
    return EXIT_OK if ok else EXIT_FAILURE


COMMAND = Command(
    "replay",
    "Put production-order JSON files on the order queue.",
    add_arguments,
    run,
    description="Each FILE holds one order, a list of orders, or an SQS event like events/sqs-order.json;\n"
    "a DIR means its *.json files. Each file is validated as a whole first: a bad file is\n"
    "reported and skipped, the others are still sent (exit 1 if any file failed).\n"
    "The forwarder's ledger makes a replay of an already delivered version a no-op.\n"
    "A test event (the bundled samples in events/) is delivered to the ERP and never marked\n"
    "or recorded; sending one to a deployed stack needs --allow-samples.",
)
