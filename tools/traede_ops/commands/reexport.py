"""`traede-export reexport`: re-export orders not exported since an instant, by invoking the poller."""

from __future__ import annotations

import argparse

from rich.table import Table

from traede_ops import ops, where
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, progress, show
from traede_ops.parser import Command


def since(text: str) -> str:
    """A past instant as `...Z`, whole seconds: the precision Traede's `not_exported_since` has."""
    from datetime import UTC, datetime

    from traede_export.models import parse_utc, utc_text

    try:
        instant = parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (e.g. 2026-11-01T00:00:00Z)") from None
    if instant > datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{text!r} is in the future")
    return utc_text(instant)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--since", type=since, required=True, help="ISO-8601 instant, UTC unless it has an offset; not in the future"
    )
    p.add_argument(
        "--throttle-wait", type=float, default=300, help="seconds to retry while a poll is running (default 300)"
    )


def run(args: argparse.Namespace) -> int:
    target = where.target(args)
    target.need("function")
    with progress(args, "waiting for the poller") as advance:
        result = ops.invoke_poller(target, args.since, throttle_wait=args.throttle_wait)
        advance(int(result.get("enqueued", 0)))
    queued = int(result.get("enqueued", 0))
    ok = not result.get("error") and not result.get("failed")
    data = {"ok": ok, "function": target.function, "since": args.since, "queued": queued, "result": result}
    table = Table(title=f"re-export of orders not exported since {args.since}", show_header=False)
    for key in ("fetched", "enqueued", "skipped", "invalid", "failed", "pages", "stopped_early", "seconds", "run_id"):
        if key in result:
            table.add_row(key.replace("_", " "), str(result[key]))
    show(args, data, table)
    if not args.json:
        console.print(f"{queued} order(s) queued for re-export" + ("" if ok else " [red](with failures)[/]"))
        if result.get("stopped_early"):
            console.print("the poller stopped early (time budget); run the re-export again for the rest")
    return EXIT_OK if ok else EXIT_FAILURE


COMMAND = Command(
    "reexport",
    "Re-export orders not exported since a UTC instant (invokes the poller).",
    add_arguments,
    run,
    description='Invokes the poller function synchronously with {"not_exported_since": SINCE} and\n'
    "reports how many orders it queued. The receiving system gets them under new\n"
    "idempotency keys, so it accepts them again.\n"
    "To try it on a fresh local stack first: traede-local reexport.",
)
