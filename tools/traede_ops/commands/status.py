"""`traede-export status`: queue depths, oldest message, orders in flight, last poll, and a verdict."""

from __future__ import annotations

import argparse

from rich.table import Table

from traede_ops import ops, where
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, show
from traede_ops.parser import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-age", type=float, default=1800, help="oldest-message limit in seconds (default 1800)")
    p.add_argument("--max-poll-age", type=float, default=15, help="minutes since the last good poll (default 15)")
    p.add_argument(
        "--age-source",
        choices=["auto", "cloudwatch", "peek", "none"],
        default="auto",
        help="how to find the oldest message's age (default auto)",
    )


def run(args: argparse.Namespace) -> int:
    target = where.target(args)
    limits = ops.StatusLimits(max_message_age=args.max_age, max_poll_age=args.max_poll_age, age_source=args.age_source)
    data = ops.status(target, limits)
    table = Table(title=f"traede-export status ({data['system_id']})", show_header=False)
    for name, label in (("queue", "order queue"), ("dlq", "dead-letter queue")):
        q = data[name]
        table.add_row(label, f"{q['visible']} visible, {q['in_flight']} in flight, {q['delayed']} delayed")
        table.add_row(f"{label}: oldest message", f"{age(q['oldest_age_seconds'])} ({q['age_source']})")
    led = data["ledger"]
    table.add_row("ledger orders", str(led["orders"]))
    table.add_row("orders in flight", with_sample(led["in_flight"], led["in_flight_sample"]))
    not_marked = with_sample(led["delivered_not_marked"], led["delivered_not_marked_sample"])
    table.add_row("delivered, not marked", not_marked)
    poll = data["last_poll"]
    if poll:
        table.add_row(
            "last successful poll",
            f"{age(poll['age_seconds'])} ago (run {poll.get('run_id', '?')}, "
            f"fetched {poll.get('fetched', '?')}, enqueued {poll.get('enqueued', '?')})",
        )
    else:
        table.add_row("last successful poll", "never")
    show(args, data, table)
    if not args.json:
        colour = "green" if data["healthy"] else "red"
        console.print(f"[bold {colour}]{data['verdict']}[/]")
    return EXIT_OK if data["healthy"] else EXIT_FAILURE


def age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def with_sample(count: int, sample: list[int]) -> str:
    if not count:
        return "0"
    more = " ..." if count > len(sample) else ""
    return f"{count} ({', '.join(map(str, sample))}{more})"


COMMAND = Command(
    "status",
    "Queue depths, oldest message, orders in flight, last poll, and a verdict.",
    add_arguments,
    run,
    description="Exit 0 when healthy, 1 when something is stuck: the DLQ is not empty, the oldest queued\n"
    "message is older than --max-age, no successful poll within --max-poll-age, or orders\n"
    "were delivered but not marked exported in Traede.\n"
    "--age-source auto uses CloudWatch against AWS and peeks at local endpoints; peeking\n"
    "receives messages (visibility 0), which counts towards the queue's maxReceiveCount.",
)
