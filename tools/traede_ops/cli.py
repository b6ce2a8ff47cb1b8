"""`traede-export`: the operator's command line. Exit codes: 0 OK, 1 failure, 2 usage.

Every AWS command finds its resources from `--stack NAME` (the CloudFormation outputs) or from
explicit `--queue-url/--dlq-url/--table/--function`; `--endpoint-url` (or AWS_ENDPOINT_URL)
points it at a local endpoint such as moto. Output is for people; `--json` is for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from traede_export.redact import masked_streams
from traede_ops import ops

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
console = Console(stderr=False)


LOCAL_EXTRA_MODULES = {"traede_local", "moto", "yaml"}


def _print(args: argparse.Namespace, data: Any, table: Table | str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        console.print(table)


def cmd_run_local(args: argparse.Namespace) -> int:
    from traede_local.faults import Faults, ReceiverFaults
    from traede_local.local_stack import LocalOptions
    from traede_local.run_local import run_local

    store = Path(args.store_dir).resolve()
    store.mkdir(parents=True, exist_ok=True)
    options = LocalOptions(
        orders=args.orders,
        large=args.large,
        system_id=args.system_id or os.environ.get("TRAEDE_SYSTEM_ID") or "local-erp",
        store_dir=store,
        paging=args.paging,
        traede_faults=Faults(error_rate=args.fault_rate, throttle_rate=args.fault_rate / 2),
        target_faults=ReceiverFaults(error_rate=args.fault_rate),
        overrides={"POWERTOOLS_LOG_LEVEL": args.log_level, "POWERTOOLS_METRICS_DISABLED": "true"},
        mapping=_mapping_name(args.mapping),
        parameters={"TargetMethod": args.method},
        target_path=args.target_path,
        dynamodb=args.dynamodb,
        **_real_endpoints(),
    )
    with _progress(args, "forwarded") as advance, _handler_logs_to_stderr():
        report = run_local(options, progress=advance)
    data = report.as_dict()
    table = Table(title="traede-export local run", show_header=False)
    for key, value in data.items():
        table.add_row(key.replace("_", " "), str(value))
    _print(args, data, table)
    lost = report.enqueued - report.delivered - report.failed
    return EXIT_OK if report.failed == 0 and lost <= 0 else EXIT_FAILURE


def _mapping_name(value: str | None) -> str | None:
    """A path that exists is used as an absolute path; anything else is a bundled mapping's name."""
    if not value:
        return None
    path = Path(value)
    return str(path.resolve()) if path.exists() else value


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


@contextlib.contextmanager
def _handler_logs_to_stderr() -> Iterator[None]:
    """Local runs import the handlers here; their Powertools logs must not mix with --json on stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _fail(args: argparse.Namespace, message: str) -> int:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message}, indent=2))
    return EXIT_FAILURE


def _target(args: argparse.Namespace) -> ops.Target:
    return ops.resolve_target(
        args.stack,
        args.region,
        queue_url=args.queue_url,
        dlq_url=args.dlq_url,
        table=args.table,
        function=args.function,
        bucket=args.bucket,
        system_id=args.system_id or os.environ.get("TRAEDE_SYSTEM_ID"),
    )


def _age(seconds: float | None) -> str:
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


# ------------------------------------------------------------------------------ map


def cmd_map(args: argparse.Namespace) -> int:
    from traede_export.config import Env
    from traede_export.mapping import MappingError
    from traede_export.target import DEFAULT_METHOD, METHODS, RequestShape, parse_static_headers, url_template_problem
    from traede_ops.preview import mapping_arg, preview

    method = (args.method or os.environ.get(Env.TARGET_METHOD) or DEFAULT_METHOD).upper()
    if method not in METHODS:
        return _fail(args, f"method must be one of {', '.join(METHODS)}, got {method!r}")
    url = args.url or os.environ.get(Env.TARGET_URL) or None
    problem = url_template_problem(url) if url else None
    if problem:
        return _fail(args, f"the URL {problem}")
    try:
        headers = parse_static_headers(args.headers or os.environ.get(Env.TARGET_STATIC_HEADERS) or "{}")
    except ValueError as exc:
        return _fail(args, f"static headers {exc}")
    try:
        mapping = mapping_arg(args.mapping if args.mapping is not None else os.environ.get(Env.TARGET_MAPPING))
    except MappingError as exc:
        return _fail(args, str(exc))
    system_id = args.system_id or os.environ.get(Env.TRAEDE_SYSTEM_ID) or "preview"
    shape = RequestShape(method=method, headers=headers, mapping=mapping, system_id=system_id)
    results = preview(args.paths, url, shape, system_id, args.reexport_since)
    ok = all(r.ok for r in results)
    if args.json:
        data = {"ok": ok, "mapping": mapping.name if mapping else None, "requests": [r.as_dict() for r in results]}
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        err = Console(stderr=True)
        for r in results:
            label = f"order {r.order_id}" if r.order_id is not None else "file"
            if not r.ok:
                err.print(f"[bold red]{label} ({escape(r.file)}): {escape(str(r.error))}[/]", highlight=False)
                continue
            console.print(f"[bold]{label}[/] ({escape(r.file)})", highlight=False)
            console.print(f"{r.method} {escape(r.url or '(no URL: give --url or set TARGET_URL)')}", highlight=False)
            for name, value in (r.headers or {}).items():
                console.print(escape(f"{name}: {value}"), highlight=False)
            print()
            print(json.dumps(r.body, indent=2, ensure_ascii=False))
            print()
        bad = sum(not r.ok for r in results)
        where = mapping.name if mapping else "no mapping: Traede's order unchanged"
        console.print(f"{len(results) - bad} request(s) built, {bad} failed ({where})", highlight=False, soft_wrap=True)
    return EXIT_OK if ok else EXIT_FAILURE


# ------------------------------------------------------------------------------ replay


def cmd_replay(args: argparse.Namespace) -> int:
    from traede_export.claim_check import ClaimCheck
    from traede_export.queue import QueueWriter
    from traede_ops.replay import new_run_id, order_files, replay

    writer = None
    target = None
    claims = None
    if not args.dry_run:
        target = _target(args)
        target.need("queue_url", "system_id")
        writer = QueueWriter(ops.client("sqs", target.region), target.value("queue_url"))
        if target.bucket:  # large orders go through S3 as the poller sends them
            claims = ClaimCheck(ops.client("s3", target.region), target.bucket)
    files = [str(p) for p in order_files(args.paths)]
    run_id = new_run_id()
    with _progress(args, "files", total=len(files)) as advance:
        system_id = (target.system_id or "") if target else ""
        # A sample is safe for Traede anywhere (never marked), but puts a fictional order in a real ERP.
        allowed = args.dry_run or args.allow_samples or ops.loopback_queue()
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
    _print(args, data, table)
    if not args.json:
        verb = "validated" if args.dry_run else "sent"
        total = sum(len(r.orders) for r in reports) if args.dry_run else sent
        console.print(f"{verb} {total} order(s) from {len(reports) - len(bad)} file(s); {len(bad)} file(s) failed")
    return EXIT_OK if ok else EXIT_FAILURE


# ------------------------------------------------------------------------------ reexport


def _since(text: str) -> str:
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


def cmd_reexport(args: argparse.Namespace) -> int:
    if args.local:
        return _reexport_local(args)
    if not args.since:
        args.parser.error("--since is required (except with --local)")
    target = _target(args)
    target.need("function")
    with _progress(args, "waiting for the poller") as advance:
        result = ops.invoke_poller(target, args.since, throttle_wait=args.throttle_wait)
        advance(int(result.get("enqueued", 0)))
    queued = int(result.get("enqueued", 0))
    ok = not result.get("error") and not result.get("failed")
    data = {"ok": ok, "function": target.function, "since": args.since, "queued": queued, "result": result}
    table = Table(title=f"re-export of orders not exported since {args.since}", show_header=False)
    for key in ("fetched", "enqueued", "skipped", "invalid", "failed", "pages", "stopped_early", "seconds", "run_id"):
        if key in result:
            table.add_row(key.replace("_", " "), str(result[key]))
    _print(args, data, table)
    if not args.json:
        console.print(f"{queued} order(s) queued for re-export" + ("" if ok else " [red](with failures)[/]"))
        if result.get("stopped_early"):
            console.print("the poller stopped early (time budget); run the re-export again for the rest")
    return EXIT_OK if ok else EXIT_FAILURE


def _reexport_local(args: argparse.Namespace) -> int:
    from traede_local.local_reexport import reexport_local
    from traede_local.local_stack import LocalOptions

    with tempfile.TemporaryDirectory(prefix="traede-reexport-") as store:
        options = LocalOptions(
            orders=args.orders,
            system_id=args.system_id or os.environ.get("TRAEDE_SYSTEM_ID") or "local-erp",
            store_dir=Path(store),
            overrides={"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
        )
        with _progress(args, "forwarded") as advance, _handler_logs_to_stderr():
            report = reexport_local(options, args.since, progress=advance)
    again = report["reexport"]
    ok = again["failed"] == 0 and report["dead_letters"] == 0 and again["redelivered"] == again["enqueued"]
    data = {"ok": ok, "mode": "local", "queued": again["enqueued"], **report}
    table = Table(title=f"local re-export of orders not exported since {report['since']}", show_header=False)
    for section in ("first_export", "reexport"):
        for key, value in report[section].items():
            table.add_row(f"{section.replace('_', ' ')}: {key}", str(value))
    for key in ("dead_letters", "forwarder_invocations", "seconds"):
        table.add_row(key.replace("_", " "), str(report[key]))
    _print(args, data, table)
    if not args.json:
        console.print(f"{again['enqueued']} order(s) queued for re-export, {again['redelivered']} delivered again")
    return EXIT_OK if ok else EXIT_FAILURE


# ------------------------------------------------------------------------------ redrive


def cmd_redrive(args: argparse.Namespace) -> int:
    target = _target(args)
    target.need(*(["dlq_url"] if args.dry_run else ["queue_url", "dlq_url"]))
    sqs = ops.client("sqs", target.region)
    letters = ops.dead_letters(sqs, target.value("dlq_url"))
    summary = [d.summary() for d in letters]
    data: dict[str, Any] = {"ok": True, "dlq_url": target.dlq_url, "dry_run": args.dry_run, "messages": summary}
    if not letters:
        data.update(moved=0)
        _print(args, data, "the dead-letter queue is empty: nothing to redrive")
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
        _print(args, data, f"dry run: {len(letters)} message(s) would be moved; nothing was moved")
        return EXIT_OK
    with _progress(args, "moved", total=len(letters)) as advance:
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
    _print(args, data, "\n".join(lines))
    return EXIT_OK if ok else EXIT_FAILURE


# ------------------------------------------------------------------------------ status


def cmd_status(args: argparse.Namespace) -> int:
    target = _target(args)
    limits = ops.StatusLimits(max_message_age=args.max_age, max_poll_age=args.max_poll_age, age_source=args.age_source)
    data = ops.status(target, limits)
    table = Table(title=f"traede-export status ({data['system_id']})", show_header=False)
    for name, label in (("queue", "order queue"), ("dlq", "dead-letter queue")):
        q = data[name]
        table.add_row(label, f"{q['visible']} visible, {q['in_flight']} in flight, {q['delayed']} delayed")
        table.add_row(f"{label}: oldest message", f"{_age(q['oldest_age_seconds'])} ({q['age_source']})")
    led = data["ledger"]
    table.add_row("ledger orders", str(led["orders"]))
    table.add_row("orders in flight", _with_sample(led["in_flight"], led["in_flight_sample"]))
    not_marked = _with_sample(led["delivered_not_marked"], led["delivered_not_marked_sample"])
    table.add_row("delivered, not marked", not_marked)
    poll = data["last_poll"]
    if poll:
        table.add_row(
            "last successful poll",
            f"{_age(poll['age_seconds'])} ago (run {poll.get('run_id', '?')}, "
            f"fetched {poll.get('fetched', '?')}, enqueued {poll.get('enqueued', '?')})",
        )
    else:
        table.add_row("last successful poll", "never")
    _print(args, data, table)
    if not args.json:
        colour = "green" if data["healthy"] else "red"
        console.print(f"[bold {colour}]{data['verdict']}[/]")
    return EXIT_OK if data["healthy"] else EXIT_FAILURE


def _with_sample(count: int, sample: list[int]) -> str:
    if not count:
        return "0"
    more = " ..." if count > len(sample) else ""
    return f"{count} ({', '.join(map(str, sample))}{more})"


# ------------------------------------------------------------------------------ parser


def _target_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group("where (a stack's outputs, or explicit resources)")
    g.add_argument("--stack", help="CloudFormation stack name: reads its outputs and SystemId parameter")
    g.add_argument("--queue-url", help="order queue URL (overrides the stack output QueueUrl)")
    g.add_argument("--dlq-url", help="dead-letter queue URL (overrides DeadLetterQueueUrl)")
    g.add_argument("--table", help="ledger table name (overrides LedgerTableName)")
    g.add_argument("--function", help="poller function name (overrides PollerFunctionName)")
    g.add_argument("--bucket", help="large-order bucket (overrides LargeOrderBucketName), for replay")
    g.add_argument("--system-id", help="Traede system id (default: $TRAEDE_SYSTEM_ID, then the stack's SystemId)")
    g.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    g.add_argument("--endpoint-url", help="a local AWS endpoint such as moto (sets AWS_ENDPOINT_URL)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traede-export", description=__doc__, formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    where = _target_options()

    def add(name: str, help_text: str, description: str = "", aws: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=(help_text + "\n\n" + description).strip(),
            parents=[where] if aws else [],
            formatter_class=_Formatter,
        )
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.set_defaults(parser=p)
        return p

    p = add(
        "run-local",
        "Run the whole pipeline locally: moto, the Traede sandbox and a local receiving system.",
        aws=False,
    )
    p.add_argument("--orders", type=int, default=40, help="orders seeded in the sandbox (default 40)")
    p.add_argument("--large", type=int, default=0, help="large orders (~1.5 MiB each, via S3) seeded as well")
    p.add_argument("--store-dir", default=".local-run/received", help="where the receiving system stores orders")
    p.add_argument("--paging", choices=["paged", "all", "ignore_page"], default="paged")
    p.add_argument("--fault-rate", type=float, default=0.0, help="inject faults on both HTTP hops (0-1)")
    p.add_argument("--log-level", default="WARNING", help="handler log level (default WARNING)")
    p.add_argument("--system-id", help="Traede system id (default: $TRAEDE_SYSTEM_ID or local-erp)")
    p.add_argument("--mapping", help="a JSONata mapping: a file path, or a bundled mapping's name")
    p.add_argument("--method", choices=["POST", "PUT"], default="POST", help="HTTP method (default POST)")
    p.add_argument("--target-path", default="", help='appended to the receiver\'s URL, e.g. "/{id}" (placeholders)')
    p.add_argument(
        "--dynamodb",
        choices=["moto", "local"],
        default="moto",
        help="the ledger's engine: moto (default, starts instantly) or DynamoDB Local (AWS's own, ~3 s of JVM)",
    )
    p.set_defaults(func=cmd_run_local)

    p = add(
        "map",
        "Show the request each order would produce: method, URL, headers and body.",
        "Runs the forwarder's own request building (mapping, URL placeholders, method, static\n"
        "headers) on ORDER files: a bare order, a list of orders, or an SQS event. Needs no AWS.\n"
        "Defaults come from the forwarder's variables TARGET_MAPPING, TARGET_URL, TARGET_METHOD\n"
        "and TARGET_STATIC_HEADERS. Secret headers are never shown. Exit 1 if any order fails.",
        aws=False,
    )
    p.add_argument("paths", nargs="+", metavar="ORDER.json", help="order files or directories of them")
    p.add_argument("--mapping", help="a JSONata file, or a bundled mapping's name ('' for none)")
    p.add_argument("--url", help="target URL, may hold {id}-style placeholders (default: $TARGET_URL)")
    p.add_argument("--method", help="POST or PUT (default: $TARGET_METHOD, then POST)")
    p.add_argument("--headers", help="static headers as a JSON object (default: $TARGET_STATIC_HEADERS)")
    p.add_argument("--system-id", help="for the Idempotency-Key and $system_id (default: $TRAEDE_SYSTEM_ID)")
    p.add_argument("--reexport-since", help="preview a re-export: the instant, as the poller would send it")
    p.set_defaults(func=cmd_map)

    p = add(
        "replay",
        "Put production-order JSON files on the order queue.",
        "Each FILE holds one order, a list of orders, or an SQS event like events/sqs-order.json;\n"
        "a DIR means its *.json files. Each file is validated as a whole first: a bad file is\n"
        "reported and skipped, the others are still sent (exit 1 if any file failed).\n"
        "The forwarder's ledger makes a replay of an already delivered version a no-op.\n"
        "A test event (the bundled samples in events/) is delivered to the ERP and never marked\n"
        "or recorded; sending one to a deployed stack needs --allow-samples.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="order files or directories of them")
    p.add_argument("--dry-run", action="store_true", help="validate only; send nothing (needs no AWS access)")
    p.add_argument(
        "--allow-samples",
        action="store_true",
        help="send test events (the bundled samples) to a deployed stack too: the ERP receives them, Traede not",
    )
    p.set_defaults(func=cmd_replay)

    p = add(
        "reexport",
        "Re-export orders not exported since a UTC instant (invokes the poller).",
        'Against AWS: invokes the poller function synchronously with {"not_exported_since": SINCE}\n'
        "and reports how many orders it queued. The receiving system gets them under new\n"
        "idempotency keys, so it accepts them again.\n"
        "With --local: a fresh local stack (moto, sandbox, receiver) exports everything once, then\n"
        "re-exports; without --since it uses the instant just after the first export.",
    )
    p.add_argument("--since", type=_since, help="ISO-8601 instant, UTC unless it has an offset; not in the future")
    p.add_argument(
        "--throttle-wait", type=float, default=300, help="seconds to retry while a poll is running (default 300)"
    )
    p.add_argument("--local", action="store_true", help="run against a fresh local stack instead of AWS")
    p.add_argument("--orders", type=int, default=20, help="with --local: orders seeded in the sandbox (default 20)")
    p.set_defaults(func=cmd_reexport)

    p = add(
        "redrive",
        "Move dead-lettered orders back to the order queue.",
        "Prints each message first: order id, attempts = ApproximateReceiveCount (which also counts\n"
        "earlier looks at the DLQ), last error from the failure_reason attribute.\n"
        "--method auto tries SQS's message-move task and falls back to receive -> send -> delete\n"
        "in batches where the endpoint lacks it (moto does).",
    )
    p.add_argument("--dry-run", action="store_true", help="show the messages, move nothing")
    p.add_argument("--method", choices=["auto", "task", "batch"], default="auto", help="how to move (default auto)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the move (default 900)")
    p.add_argument("--show", type=int, default=50, help="messages listed in the summary table (default 50)")
    p.set_defaults(func=cmd_redrive)

    p = add(
        "status",
        "Queue depths, oldest message, orders in flight, last poll, and a verdict.",
        "Exit 0 when healthy, 1 when something is stuck: the DLQ is not empty, the oldest queued\n"
        "message is older than --max-age, no successful poll within --max-poll-age, or orders\n"
        "were delivered but not marked exported in Traede.\n"
        "--age-source auto uses CloudWatch against AWS and peeks at local endpoints; peeking\n"
        "receives messages (visibility 0), which counts towards the queue's maxReceiveCount.",
    )
    p.add_argument("--max-age", type=float, default=1800, help="oldest-message limit in seconds (default 1800)")
    p.add_argument("--max-poll-age", type=float, default=15, help="minutes since the last good poll (default 15)")
    p.add_argument(
        "--age-source",
        choices=["auto", "cloudwatch", "peek", "none"],
        default="auto",
        help="how to find the oldest message's age (default auto)",
    )
    p.set_defaults(func=cmd_status)
    return parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "endpoint_url", None):
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    # A secret this process knows (run-local, in-process handlers) never prints: see redact.py.
    with masked_streams():
        try:
            return int(args.func(args))
        except ops.OpsError as exc:
            return _fail(args, str(exc))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            operation = getattr(exc, "operation_name", "AWS call")
            return _fail(args, f"{operation} failed: {error.get('Code')}: {error.get('Message', exc)}")
        except BotoCoreError as exc:
            return _fail(args, str(exc))
        except ModuleNotFoundError as exc:
            # An operator's install has no local emulators; only the local commands need them.
            if (exc.name or "").split(".")[0] not in LOCAL_EXTRA_MODULES:
                raise
            return _fail(args, f"this command runs the local stack: pip install 'traede-export[local]' ({exc})")
        except KeyboardInterrupt:
            return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
