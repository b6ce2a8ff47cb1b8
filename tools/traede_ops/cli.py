"""`traede-export`: the operator's command line. Exit codes: 0 OK, 1 failure, 2 usage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
console = Console(stderr=False)


def _print(args: argparse.Namespace, data: Any, table: Table | str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        console.print(table)


def cmd_run_local(args: argparse.Namespace) -> int:
    from traede_ops.faults import Faults, ReceiverFaults
    from traede_ops.local_stack import LocalOptions
    from traede_ops.run_local import run_local

    store = Path(args.store_dir).resolve()
    store.mkdir(parents=True, exist_ok=True)
    options = LocalOptions(
        orders=args.orders,
        system_id=os.environ.get("TRAEDE_SYSTEM_ID", "local-erp"),
        store_dir=store,
        paging=args.paging,
        traede_faults=Faults(error_rate=args.fault_rate, throttle_rate=args.fault_rate / 2),
        target_faults=ReceiverFaults(error_rate=args.fault_rate),
        overrides={"POWERTOOLS_LOG_LEVEL": args.log_level, "POWERTOOLS_METRICS_DISABLED": "true"},
        **_real_endpoints(),
    )
    with _progress(args, "forwarded") as advance:
        report = run_local(options, progress=advance)
    data = report.as_dict()
    table = Table(title="traede-export local run", show_header=False)
    for key, value in data.items():
        table.add_row(key.replace("_", " "), str(value))
    _print(args, data, table)
    lost = report.enqueued - report.delivered - report.failed
    return EXIT_OK if report.failed == 0 and lost <= 0 else EXIT_FAILURE


def _real_endpoints() -> dict[str, Any]:
    """TRAEDE_API_URL / TARGET_URL point the local run at real systems; credentials from env JSON."""
    found: dict[str, Any] = {}
    if os.environ.get("TRAEDE_API_URL"):
        found["traede_url"] = os.environ["TRAEDE_API_URL"]
        found["traede_credentials"] = {
            "access_token": os.environ.get("TRAEDE_ACCESS_TOKEN", ""),
            "app_key": os.environ.get("TRAEDE_APP_KEY", ""),
        }
    if os.environ.get("TARGET_URL"):
        found["target_url"] = os.environ["TARGET_URL"]
        found["target_headers"] = json.loads(os.environ.get("TARGET_HEADERS_JSON", "{}"))
    return found


class _progress:
    """A rich progress line with a count and a rate; silent with --json."""

    def __init__(self, args: argparse.Namespace, what: str, total: int | None = None) -> None:
        self._enabled = not args.json and sys.stderr.isatty()
        self._what, self._total = what, total

    def __enter__(self) -> Any:
        if not self._enabled:
            return lambda *_: None
        from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                return Text(f"{task.speed or 0:.0f}/s")

        self._bar = Progress(
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            Rate(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task(self._what, total=self._total)

        def advance(done: int | None = None) -> None:
            if done is None:
                self._bar.advance(task)
            else:
                self._bar.update(task, completed=done)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            self._bar.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traede-export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = add("run-local", "Run the whole pipeline locally: moto, the Traede sandbox and a local receiving system.")
    p.add_argument("--orders", type=int, default=40, help="orders seeded in the sandbox (default 40)")
    p.add_argument("--store-dir", default=".local-run/received", help="where the receiving system stores orders")
    p.add_argument("--paging", choices=["paged", "all", "ignore_page"], default="paged")
    p.add_argument("--fault-rate", type=float, default=0.0, help="inject faults on both HTTP hops (0-1)")
    p.add_argument("--log-level", default="WARNING", help="handler log level (default WARNING)")
    p.set_defaults(func=cmd_run_local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
