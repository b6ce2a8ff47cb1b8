"""`traede-export redrive`: move dead-lettered orders back to the order queue."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table

from traede_ops import ops, where
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, progress, show
from traede_ops.parser import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="show the messages, move nothing")
    p.add_argument("--method", choices=["auto", "task", "batch"], default="auto", help="how to move (default auto)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the move (default 900)")
    p.add_argument("--show", type=int, default=50, help="messages listed in the summary table (default 50)")


def run(args: argparse.Namespace) -> int:
    target = where.target(args)
    target.need(*(["dlq_url"] if args.dry_run else ["queue_url", "dlq_url"]))
    sqs = ops.client("sqs", target.region)
    letters = ops.dead_letters(sqs, target.value("dlq_url"))
    summary = [d.summary() for d in letters]
    data: dict[str, Any] = {"ok": True, "dlq_url": target.dlq_url, "dry_run": args.dry_run, "messages": summary}
    if not letters:
        data.update(moved=0)
        show(args, data, "the dead-letter queue is empty: nothing to redrive")
        return EXIT_OK
    if not args.json:
        table = Table(title=f"{len(letters)} message(s) on the dead-letter queue")
        table.add_column("message id", overflow="fold")
        for column in ("order", "attempts", "sent (UTC)"):
            table.add_column(column, no_wrap=True)
        table.add_column("last error", overflow="fold")
        for d in letters[: args.show]:
            sent = (d.sent_at or "")[:19].replace("T", " ")
            order = str(d.order_id or "?") + (" (large, S3)" if d.large else "")
            # The reason quotes the ERP's answer: text, never Rich markup.
            table.add_row(escape(d.message_id), order, str(d.attempts), sent, escape(d.last_error or ""))
        if len(letters) > args.show:
            table.caption = f"... and {len(letters) - args.show} more (--show N)"
        console.print(table)
    if args.dry_run:
        data.update(moved=0)
        show(args, data, f"dry run: {len(letters)} message(s) would be moved; nothing was moved")
        return EXIT_OK
    with progress(args, "moved", total=len(letters)) as advance:
        result = ops.redrive(target, args.method, len(letters), progress=advance, timeout=args.timeout)
    done = result.task_status == "COMPLETED" if result.method == "task" else result.moved >= len(letters)
    ok = done and not result.failed
    data.update(
        ok=ok,
        moved=result.moved,
        method=result.method,
        failed=result.failed,
        task_handle=result.task_handle,
        task_status=result.task_status,
        note=result.note,
    )
    lines = [f"moved {result.moved} of {len(letters)} message(s) to the order queue ({result.method})"]
    if result.note:
        lines.append(result.note)
    lines += [f"[red]{mid}: {why}[/]" for mid, why in result.failed.items()]
    show(args, data, "\n".join(lines))
    return EXIT_OK if ok else EXIT_FAILURE


COMMAND = Command(
    "redrive",
    "Move dead-lettered orders back to the order queue.",
    add_arguments,
    run,
    description="Prints each message first: order id, attempts = ApproximateReceiveCount (which also counts\n"
    "earlier looks at the DLQ), last error from the failure_reason attribute.\n"
    "--method auto tries SQS's message-move task and falls back to receive -> send -> delete\n"
    "in batches where the endpoint lacks it (moto does).",
)
