"""What the stack costs in AWS each month, and how long a first deploy takes to drain a backlog (`make cost`).

`python -m traede_bench.cost [--results bench-results/results.json] [--json] [--doc FILE]`

Inputs: the per-order figures `make bench` measured (calls, DynamoDB units, SQS billed requests,
handler seconds, log bytes), or `DEFAULTS` (from a full run on this project's 2-core machine)
when no results file exists; memory, architecture, alarms, dashboards, secrets, keys, schedule
and concurrency from template.yaml. The benchmark's times are local (DynamoDB Local on loopback,
moto, a local Traede sandbox and a receiver answering in 100 ms); in AWS a DynamoDB round trip
takes a few milliseconds more, so Lambda time is a lower bound. No free tier is applied.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traede_bench import doc
from traede_export.ledger import RETENTION_SECONDS
from traede_local.template import TEMPLATE, load_template, resources_of_type

REGION = "us-east-1"
PRICE_LIST = (
    "AWS public on-demand list prices for us-east-1 as published in June 2025 (written down from the price pages, "
    "not fetched: this machine has no network); check before quoting"
)
PRICES = {
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, after the November 2024 price cut
    "dynamodb_read_unit": 0.125 / 1e6,
    "dynamodb_gb_month": 0.25,
    "sqs_request": 0.40 / 1e6,  # standard queue; each 64 KiB chunk of a payload is one request
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "s3_gb_month": 0.023,
    "cloudwatch_alarm": 0.10,  # standard resolution, per alarm-month
    "cloudwatch_dashboard": 3.00,  # per dashboard-month (an account's first 3 are free)
    "cloudwatch_metric": 0.30,  # per custom metric-month (first 10,000 tier)
    "logs_ingested_gb": 0.50,
    "logs_stored_gb_month": 0.03,
    "xray_trace": 5.00 / 1e6,
    "secret_month": 0.40,
    "secret_api_call": 0.05 / 10_000,
    "kms_key_month": 1.00,
}
DAYS = 30.42  # days in an average month
VOLUMES = (1_000, 10_000, 100_000)  # orders a day
BACKLOG = 100_000

# Per-order figures from a full `make bench` on this project's 2-core machine, used without a results file.
DEFAULTS = {
    "forwarder_seconds": 0.0161,  # handler seconds per order, full batches, receiver at 100 ms
    "forwarder_read_units": 1.0,
    "forwarder_write_units": 3.0,
    "forwarder_batch_size": 10.0,
    "forwarder_log_bytes": 725.0,
    "poll_seconds": 0.0057,
    "poll_read_units": 0.0,
    "poll_write_units": 1.0,
    "poll_sqs_requests": 0.1,
}
# Assumptions that no benchmark measures; each is stated in the output.
ASSUMPTIONS = {
    "large_order_share": 0.01,  # orders over the 256 KiB claim-check threshold (a guess: lines and variants included)
    "large_order_mb": 1.5,
    "platform_log_bytes_per_invocation": 400,  # Lambda's START/END/REPORT lines
    "poll_log_bytes_per_run": 2_000,
    "poll_fixed_seconds": 0.5,  # per run besides the orders: first export page, the poll record
    "ledger_item_kb": 1.0,
    "esm_idle_receives_per_month": 5 * 3 * 60 * 24 * DAYS,  # 5 pollers long-polling 20 s each
    "secret_fetches_per_month": 2 * 24 * DAYS * 2,  # a fresh container per function about every hour
    "time_margin_seconds": 10.0,  # TIME_SAFETY_MARGIN_SECONDS' default
}


@dataclass(frozen=True)
class Stack:
    """What template.yaml says that the cost depends on."""

    architecture: str
    poller_memory_mb: int
    forwarder_memory_mb: int
    poller_timeout: int
    alarms: int
    dashboards: int
    secrets: int
    kms_keys: int
    schedule_seconds: int
    forwarder_max_concurrency: int
    log_retention_days: int
    lease_seconds: int
    custom_metrics: int

    @classmethod
    def read(cls, path: Path = TEMPLATE) -> Stack:
        template = load_template(path)
        globals_ = template.get("Globals", {}).get("Function", {})
        fns = resources_of_type(template, "AWS::Serverless::Function")

        def prop(name: str, key: str) -> Any:
            return fns[name]["Properties"].get(key, globals_.get(key))

        params = template["Parameters"]
        rate = re.fullmatch(r"rate\((\d+) minutes?\)", str(params["ScheduleExpression"]["Default"]))
        return cls(
            architecture=str((prop("PollerFunction", "Architectures") or ["x86_64"])[0]),
            poller_memory_mb=int(prop("PollerFunction", "MemorySize")),
            forwarder_memory_mb=int(prop("ForwarderFunction", "MemorySize")),
            poller_timeout=int(prop("PollerFunction", "Timeout")),
            alarms=len(resources_of_type(template, "AWS::CloudWatch::Alarm")),
            dashboards=len(resources_of_type(template, "AWS::CloudWatch::Dashboard")),
            secrets=len(resources_of_type(template, "AWS::SecretsManager::Secret")),
            kms_keys=len(resources_of_type(template, "AWS::KMS::Key")),
            schedule_seconds=int(rate.group(1)) * 60 if rate else int(params["PollIntervalSeconds"]["Default"]),
            forwarder_max_concurrency=int(params["ForwarderMaxConcurrency"]["Default"]),
            log_retention_days=int(params["LogRetentionDays"]["Default"]),
            lease_seconds=int(params["InFlightLeaseSeconds"]["Default"]),
            custom_metrics=count_metrics(path.parent / "functions"),
        )


def count_metrics(functions_dir: Path) -> int:
    """Distinct metric names the handlers emit (one `service` dimension each, so one metric per name)."""
    names: set[str] = set()
    for app in functions_dir.glob("*/app.py"):
        text = app.read_text(encoding="utf-8")
        names.update(re.findall(r'add_metric\(\s*"(\w+)"', text))
        names.update(re.findall(r'"\w+":\s*"([A-Z]\w+)",', text))  # a METRICS = {"field": "Name"} table
    return len(names)


def load_per_order(results: Path) -> tuple[dict[str, float], str]:
    if results.is_file():
        figures = json.loads(results.read_text(encoding="utf-8")).get("per_order")
        if figures:
            return {**DEFAULTS, **figures}, f"measured ({results})"
    return dict(DEFAULTS), "defaults (no results file: run `make bench` to measure)"


def monthly(orders_per_day: int, per: dict[str, float], stack: Stack) -> dict[str, float]:
    """Dollars a month by line."""
    p, a = PRICES, ASSUMPTIONS
    orders = orders_per_day * DAYS
    runs = DAYS * 86_400 / stack.schedule_seconds
    per_run = orders / runs
    # Orders reach the queue a poll at a time, so a batch holds at most what one poll enqueued.
    batch = max(1.0, min(per["forwarder_batch_size"], per_run))
    batches = orders / batch
    forwarder_seconds = batches * per["forwarder_seconds"] * per["forwarder_batch_size"]  # a batch's time, full or not
    poll_seconds = runs * a["poll_fixed_seconds"] + orders * per["poll_seconds"]
    gb_seconds = forwarder_seconds * stack.forwarder_memory_mb / 1024 + poll_seconds * stack.poller_memory_mb / 1024
    invocations = batches + runs
    large = orders * a["large_order_share"]
    log_gb = (
        orders * per["forwarder_log_bytes"]
        + invocations * a["platform_log_bytes_per_invocation"]
        + runs * a["poll_log_bytes_per_run"]
    ) / 1e9
    sqs_requests = orders * per["poll_sqs_requests"] + 2 * batches + a["esm_idle_receives_per_month"]
    return {
        "Lambda compute (GB-s, arm64)": gb_seconds * p["lambda_gb_second_arm64"],
        "Lambda requests": invocations * p["lambda_request"],
        "DynamoDB writes": orders * (per["forwarder_write_units"] + per["poll_write_units"]) * p["dynamodb_write_unit"]
        + runs * p["dynamodb_write_unit"],
        "DynamoDB reads": orders * (per["forwarder_read_units"] + per["poll_read_units"]) * p["dynamodb_read_unit"],
        "DynamoDB storage": orders_per_day
        * RETENTION_SECONDS
        / 86_400
        * a["ledger_item_kb"]
        / 1e6
        * p["dynamodb_gb_month"],
        "SQS requests": sqs_requests * p["sqs_request"],
        "S3 for large orders": large * (p["s3_put"] + p["s3_get"] + a["large_order_mb"] / 1024 * p["s3_gb_month"]),
        "CloudWatch alarms": stack.alarms * p["cloudwatch_alarm"],
        "CloudWatch dashboard": stack.dashboards * p["cloudwatch_dashboard"],
        "CloudWatch custom metrics": stack.custom_metrics * p["cloudwatch_metric"],
        "CloudWatch Logs ingestion": log_gb * p["logs_ingested_gb"],
        "CloudWatch Logs storage": log_gb * stack.log_retention_days / DAYS * p["logs_stored_gb_month"],
        "X-Ray traces (Tracing: Active)": invocations * p["xray_trace"],
        "Secrets Manager": stack.secrets * p["secret_month"] + a["secret_fetches_per_month"] * p["secret_api_call"],
        "KMS key (alarm topic)": stack.kms_keys * p["kms_key_month"],
    }


def backlog(per: dict[str, float], stack: Stack, pending: int = BACKLOG) -> dict[str, Any]:
    """How long a first deploy takes to deliver `pending` orders, and which setting bounds it."""
    budget = stack.poller_timeout - ASSUMPTIONS["time_margin_seconds"] - ASSUMPTIONS["poll_fixed_seconds"]
    per_run = max(1, int(budget / per["poll_seconds"]))
    runs = math.ceil(pending / per_run)
    poll_bound = (runs - 1) * stack.schedule_seconds + min(pending, per_run) * per["poll_seconds"]
    batch_seconds = per["forwarder_seconds"] * per["forwarder_batch_size"]
    forward_rate = stack.forwarder_max_concurrency * per["forwarder_batch_size"] / batch_seconds
    forward_bound = pending / forward_rate
    bound = (
        "ForwarderMaxConcurrency (the forwarder)"
        if forward_bound >= poll_bound
        else "the poller's Timeout and the schedule (orders a run can enqueue x runs)"
    )
    return {
        "pending": pending,
        "orders_per_poll_run": per_run,
        "poll_runs": runs,
        "poll_bound_seconds": poll_bound,
        "forwarder_orders_per_second": forward_rate,
        "forward_bound_seconds": forward_bound,
        "drain_seconds": max(poll_bound, forward_bound),
        "bounded_by": bound,
        "lease_note": "under InFlightLeaseSeconds: no lease expires before its order is forwarded"
        if forward_bound < stack.lease_seconds
        else f"longer than InFlightLeaseSeconds ({stack.lease_seconds} s): polls re-enqueue orders still queued "
        "(extra messages, not extra deliveries)",
    }


def report(per: dict[str, float], source: str, stack: Stack) -> dict[str, Any]:
    tables = {volume: monthly(volume, per, stack) for volume in VOLUMES}
    return {
        "region": REGION,
        "price_list": PRICE_LIST,
        "prices": PRICES,
        "per_order": per,
        "per_order_source": source,
        "assumptions": ASSUMPTIONS,
        "stack": stack.__dict__,
        "monthly_usd": tables,
        "biggest_line": {volume: max(lines, key=lambda k: lines[k]) for volume, lines in tables.items()},
        "backlog": backlog(per, stack),
    }


def render(data: dict[str, Any]) -> str:
    tables: dict[int, dict[str, float]] = data["monthly_usd"]
    stack = data["stack"]
    out = [
        f"Monthly AWS cost in {data['region']} ({data['price_list']}); no free tier.",
        f"Per-order figures: {data['per_order_source']}; forwarder time at the benchmark's 100 ms receiver latency.",
        f"Template: {stack['architecture']}, poller {stack['poller_memory_mb']} MB, forwarder "
        f"{stack['forwarder_memory_mb']} MB, {stack['alarms']} alarms, {stack['dashboards']} dashboard(s), "
        f"{stack['custom_metrics']} custom metrics, poll every {stack['schedule_seconds']} s.",
        "",
        "| line | " + " | ".join(f"{v:,} orders/day" for v in tables) + " |",
        "|---|" + "---:|" * len(tables),
    ]
    for line in next(iter(tables.values())):
        out.append(f"| {line} | " + " | ".join(f"${t[line]:,.2f}" for t in tables.values()) + " |")
    out.append("| **total** | " + " | ".join(f"**${sum(t.values()):,.2f}**" for t in tables.values()) + " |")
    out.append("")
    for volume, line in data["biggest_line"].items():
        share = tables[volume][line] / sum(tables[volume].values())
        out.append(f"- Biggest line at {volume:,} orders/day: {line} ({share:.0%}).")
    a = data["assumptions"]
    out.append("")
    out.append(
        f"Assumed: {a['large_order_share']:.1%} of orders are over the 256 KiB claim-check threshold and go "
        f"through S3 ({a['large_order_mb']} MB each, one PUT and one GET, kept 30 days by the lifecycle rule); "
        f"ledger items of {a['ledger_item_kb']} KB kept "
        f"{RETENTION_SECONDS // 86_400} days (TTL); "
        f"{a['platform_log_bytes_per_invocation']} B of Lambda platform log lines per invocation; idle event-source "
        "polling of 5 long-polling receivers."
    )
    b = data["backlog"]
    out += [
        "",
        f"Backlog of {b['pending']:,} pending orders at the first deploy: about {b['drain_seconds'] / 60:.0f} minutes, "
        f"bounded by {b['bounded_by']}.",
        "",
        f"- poller: {b['orders_per_poll_run']:,} orders per run within its Timeout, {b['poll_runs']} run(s), "
        f"{b['poll_bound_seconds'] / 60:.1f} min; forwarder: {b['forwarder_orders_per_second']:.0f} orders/s with "
        f"ForwarderMaxConcurrency={stack['forwarder_max_concurrency']}, {b['forward_bound_seconds'] / 60:.1f} min;"
        f" {b['lease_note']}.",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m traede_bench.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("bench-results/results.json"))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    doc.add_option(parser, "cost")
    args = parser.parse_args(argv)
    per, source = load_per_order(args.results)
    data = report(per, source, Stack.read())
    print(json.dumps(data, indent=2) if args.json else render(data))
    if args.doc:
        doc.write_block(args.doc, "cost", render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
