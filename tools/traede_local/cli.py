"""`traede-local` (or `python -m traede_local`): the pipeline on this machine. Exit codes: 0 OK, 1 failure, 2 usage.

`run` starts moto, the Traede sandbox and a local receiving system, creates the queues, the table
and the bucket as template.yaml declares them, polls once and drains the queue with the real
handlers (`make local`). `reexport` does the same on a fresh stack, then re-exports and reports
what was delivered again. Needs the local extra: pip install 'traede-export[local]'.
The operator CLI, for a deployed stack, is `traede-export`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from traede_export.redact import masked_streams
from traede_ops.commands.reexport import since
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, fail, progress, show

LOCAL_EXTRA_MODULES = {"moto", "yaml"}


def run(args: argparse.Namespace) -> int:
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
        mapping=mapping_name(args.mapping),
        parameters={"TargetMethod": args.method},
        target_path=args.target_path,
        dynamodb=args.dynamodb,
        **real_endpoints(),
    )
    with progress(args, "forwarded") as advance, handler_logs_to_stderr():
        report = run_local(options, progress=advance)
    data = report.as_dict()
    table = Table(title="traede-local run", show_header=False)
    for key, value in data.items():
        table.add_row(key.replace("_", " "), str(value))
    show(args, data, table)
    lost = report.enqueued - report.delivered - report.failed
    return EXIT_OK if report.failed == 0 and lost <= 0 else EXIT_FAILURE


def reexport(args: argparse.Namespace) -> int:
    import tempfile

    from traede_local.local_reexport import reexport_local
    from traede_local.local_stack import LocalOptions

    with tempfile.TemporaryDirectory(prefix="traede-reexport-") as store:
        options = LocalOptions(
            orders=args.orders,
            system_id=args.system_id or os.environ.get("TRAEDE_SYSTEM_ID") or "local-erp",
            store_dir=Path(store),
            overrides={"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"},
        )
        with progress(args, "forwarded") as advance, handler_logs_to_stderr():
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
    show(args, data, table)
    if not args.json:
        console.print(f"{again['enqueued']} order(s) queued for re-export, {again['redelivered']} delivered again")
    return EXIT_OK if ok else EXIT_FAILURE


def mapping_name(value: str | None) -> str | None:
    """A path that exists is used as an absolute path; anything else is a bundled mapping's name."""
    if not value:
        return None
    path = Path(value)
    return str(path.resolve()) if path.exists() else value


def real_endpoints() -> dict[str, Any]:
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


@contextlib.contextmanager
def handler_logs_to_stderr() -> Iterator[None]:
    """Local runs import the handlers here; their Powertools logs must not mix with --json on stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traede-local", description=__doc__, formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=(help_text + "\n\n" + description).strip(), formatter_class=_Formatter
        )
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.add_argument("--system-id", help="Traede system id (default: $TRAEDE_SYSTEM_ID or local-erp)")
        return p

    p = add("run", "Run the whole pipeline locally: moto, the Traede sandbox and a local receiving system.")
    p.add_argument("--orders", type=int, default=40, help="orders seeded in the sandbox (default 40)")
    p.add_argument("--large", type=int, default=0, help="large orders (~1.5 MiB each, via S3) seeded as well")
    p.add_argument("--store-dir", default=".local-run/received", help="where the receiving system stores orders")
    p.add_argument("--paging", choices=["paged", "all", "ignore_page"], default="paged")
    p.add_argument("--fault-rate", type=float, default=0.0, help="inject faults on both HTTP hops (0-1)")
    p.add_argument("--log-level", default="WARNING", help="handler log level (default WARNING)")
    p.add_argument("--mapping", help="a JSONata mapping: a file path, or a bundled mapping's name")
    p.add_argument("--method", choices=["POST", "PUT"], default="POST", help="HTTP method (default POST)")
    p.add_argument("--target-path", default="", help='appended to the receiver\'s URL, e.g. "/{id}" (placeholders)')
    p.add_argument(
        "--dynamodb",
        choices=["moto", "local"],
        default="moto",
        help="the ledger's engine: moto (default, starts instantly) or DynamoDB Local (AWS's own, ~3 s of JVM)",
    )
    p.set_defaults(func=run)

    p = add(
        "reexport",
        "Export everything once on a fresh local stack, then re-export, and report both rounds.",
        "What `traede-export reexport --since` does against AWS, tried on this machine: the\n"
        "receiving system gets the orders again under new idempotency keys. Without --since it\n"
        "uses the instant just after the first export.",
    )
    p.add_argument("--since", type=since, help="ISO-8601 instant, UTC unless it has an offset; not in the future")
    p.add_argument("--orders", type=int, default=20, help="orders seeded in the sandbox (default 20)")
    p.set_defaults(func=reexport)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The handlers run in this process and read the real credentials (TRAEDE_ACCESS_TOKEN, ...): masked.
    with masked_streams():
        try:
            return int(args.func(args))
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in LOCAL_EXTRA_MODULES:
                raise
            return fail(args, f"the local stack needs the local extra: pip install 'traede-export[local]' ({exc})")
        except KeyboardInterrupt:
            return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
