"""What every command shares for output: exit codes, tables or `--json`, errors, a progress line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
console = Console(stderr=False)


def show(args: argparse.Namespace, data: Any, table: Table | str) -> None:
    """`data` as JSON with --json, else the table (or line) for people."""
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        console.print(table)


def fail(args: argparse.Namespace, message: str) -> int:
    # Not folded: a line split by rich is no longer masked whole by the output stream (redact.py).
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message}, indent=2))
    return EXIT_FAILURE


class progress:
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
