"""The benchmark's scenarios, built on the local stack: its template wiring, Lambda runtime and SQS event source.

* `forwarder_batches`: one stack, one real poll, then the forwarder handler invoked through the
  stack's SQS event source one batch at a time (nothing else running, so every call inside an
  invocation's window belongs to it), first with an instant receiver, then at a target latency.
* `big_poll`: one poll of many orders in a fresh interpreter (`poll_worker`), so its peak RSS is
  the poller's alone, while this process keeps the queue empty with PurgeQueue (moto's SQS slows
  down with queue depth; nothing is marked, so pages stay put); the worker checks what it sends.
* `init_times`: each handler module imported in fresh interpreters.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from traede_bench.timing import RECEIVER, TRAEDE, CallCounts, Recorder, breakdown
from traede_local.events import load_event
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalOptions, LocalStack
from traede_local.seed import seed_orders

QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
VISIBILITY = 900  # seconds: no redelivery of a slow batch during a measurement
PURGE_EVERY = 0.05  # seconds between PurgeQueue calls during the big poll


@dataclass(frozen=True)
class Plan:
    overhead_batches: int  # forwarder batches against an instant receiver
    ratio_orders: int  # orders forwarded at `latency`
    latency: float  # the receiving system's latency, seconds
    big_poll: int  # orders in the one-poll measurement
    init_runs: int  # fresh interpreters per handler
    warm_up_rounds: int  # DynamoDB Local warm-up: rounds of the forwarder's three ledger calls


FULL = Plan(overhead_batches=10, ratio_orders=300, latency=0.1, big_poll=10_000, init_runs=5, warm_up_rounds=1500)
QUICK = Plan(overhead_batches=2, ratio_orders=50, latency=0.1, big_poll=300, init_runs=1, warm_up_rounds=50)


def seeded_for(pending: int) -> int:
    """How many sandbox seed orders give `pending` exportable ones (drafts and closed orders are not exported)."""
    count = 0
    for i, order in enumerate(seed_orders(2 * pending + 10), 1):
        count += order["status"] not in ("draft", "closed")
        if count == pending:
            return i
    raise ValueError(f"no seed count gives {pending} exportable orders")


def ideal_mark_calls(n: int, batch: int = 10) -> int:
    return math.ceil(n / batch)


def floor_ratio(records: int, latency: float, seconds: float) -> float:
    """One-at-a-time's floor (records x latency, nothing else) over the measured time: how many times faster."""
    return records * latency / seconds if seconds > 0 else math.inf


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


@dataclass(frozen=True)
class Servers:
    """Shared by every stack of a run: moto in a process of its own, DynamoDB Local in its JVM."""

    moto: str
    dynamodb: str


@contextmanager
def local_stack(orders: int, recorder: Recorder, servers: Servers, overrides: dict[str, str]) -> Iterator[LocalStack]:
    options = LocalOptions(orders=seeded_for(orders), visibility_timeout=VISIBILITY, overrides=overrides)
    stack = LocalStack(options, moto_endpoint=servers.moto, dynamodb_endpoint=servers.dynamodb).start()
    try:
        assert stack.sandbox is not None and stack.receiver is not None
        pending = len(stack.sandbox.pending(options.system_id))
        if pending != orders:
            raise RuntimeError(f"the sandbox has {pending} exportable orders, expected {orders}")
        recorder.hosts[urlsplit(stack.sandbox.url).netloc] = TRAEDE
        recorder.hosts[urlsplit(stack.receiver.url).netloc] = RECEIVER
        yield stack
    finally:
        stack.stop()


# --- the forwarder -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    records: int
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class TimedFunction(LocalFunction):
    """The forwarder as the stack loads it, with each invocation's window kept."""

    invocations: list[Invocation] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        started = time.monotonic()
        try:
            return super().invoke(event)
        finally:
            self.invocations.append(Invocation(len(event.get("Records", [])), started, time.monotonic()))


def batch_figures(recorder: Recorder, invocation: Invocation) -> dict[str, Any]:
    spans = recorder.within(invocation.started, invocation.ended)
    counts = CallCounts.of(spans)
    return {
        "records": invocation.records,
        "seconds": invocation.seconds,
        "breakdown": breakdown(spans, invocation.started, invocation.ended),
        "calls": counts.by_operation,
        "read_units": counts.read_units,
        "write_units": counts.write_units,
        "sqs_billed_requests": counts.sqs_billed_requests,
    }


def phase_summary(batches: list[dict[str, Any]], latency: float) -> dict[str, Any]:
    seconds = [b["seconds"] for b in batches]
    records = sum(b["records"] for b in batches)
    categories = batches[0]["breakdown"].keys() if batches else []
    calls: dict[str, float] = {}
    for b in batches:
        for op, n in b["calls"].items():
            calls[op] = calls.get(op, 0) + n / len(batches)
    return {
        "latency_ms": round(latency * 1000),
        "batches": len(batches),
        "records": records,
        "handler_seconds_total": sum(seconds),
        "handler_seconds_median": median(seconds),
        "breakdown_mean_seconds": {c: statistics.fmean(b["breakdown"][c] for b in batches) for c in categories},
        "calls_per_batch": calls,
        "one_at_a_time_floor_seconds": records * latency,
        "ratio": floor_ratio(records, latency, sum(seconds)) if latency > 0 else None,
        "read_units_per_order": sum(b["read_units"] for b in batches) / records,
        "write_units_per_order": sum(b["write_units"] for b in batches) / records,
    }


class ReceiverProcess:
    """The receiving system in a process of its own (`receiver_worker`): an ERP is another machine,
    and in this process its request threads would take the GIL from the forwarder's."""

    def __init__(self) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "traede_bench.receiver_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._read()

    def _read(self) -> str:
        assert self._child.stdout is not None
        line = self._child.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"the receiver worker stopped (exit {self._child.poll()})")
        return line

    def _ask(self, command: str) -> str:
        assert self._child.stdin is not None
        self._child.stdin.write(command + "\n")
        self._child.stdin.flush()
        return self._read()

    def set_latency(self, seconds: float) -> None:
        if self._ask(f"latency {seconds}") != "ok":
            raise RuntimeError("the receiver worker did not take the latency")

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._ask("stats"))
        return answer

    def stop(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        try:
            self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()


def warm_up(servers: Servers, rounds: int) -> dict[str, Any]:
    """Warm DynamoDB Local's JIT with the ledger's own calls, on a table of their own, before measuring.

    A JVM compiles its hot paths over its first thousands of calls; until then each call takes about
    twice as long. AWS's DynamoDB has no such warm-up, so measuring a cold JVM would charge it to the
    forwarder. Each round is a batch of 10 as the forwarder makes it (the read, the leases, the delivery
    and mark records); the first and last 100 rounds' medians show the effect.
    """
    import boto3

    from traede_export.ledger import ExportLedger
    from traede_export.models import OrderRef

    client = boto3.client(
        "dynamodb", endpoint_url=servers.dynamodb, region_name="us-east-1", aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )  # fmt: skip
    table = "warm-up"
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ledger = ExportLedger.on_dynamodb(client, table, "warm-up")

    def one_round(i: int) -> list[float]:
        refs = [OrderRef(i * 10 + j, f"2026-01-01T00:00:00.{i:06d}Z") for j in range(10)]
        keyed = [(ref, f"key-{ref.order_id}") for ref in refs]
        calls: list[Callable[[], object]] = [
            lambda: ledger.get_many(ref.order_id for ref in refs),
            lambda: ledger.begin_deliveries(keyed, 60, f"warm-{i}"),
            lambda: ledger.finish_deliveries(keyed, [], f"warm-{i}", {}),
        ]
        took = []
        for call in calls:
            t0 = time.perf_counter()
            call()
            took.append((time.perf_counter() - t0) * 1000)
        return took

    started = time.monotonic()
    samples = [list(kind) for kind in zip(*(one_round(i) for i in range(rounds)), strict=True)]
    client.delete_table(TableName=table)
    n = min(100, max(1, rounds // 4))
    names = ("read_ms", "leases_ms", "delivery_and_mark_records_ms")
    return {
        "rounds": rounds,
        "seconds": time.monotonic() - started,
        "first": {name: median(xs[:n]) for name, xs in zip(names, samples, strict=True)},
        "last": {name: median(xs[-n:]) for name, xs in zip(names, samples, strict=True)},
    }


def forwarder_batches(
    plan: Plan,
    recorder: Recorder,
    servers: Servers,
    output_bytes: Callable[[], int],
    receiver: ReceiverProcess | None = None,
) -> dict[str, Any]:
    """The real poll of every order, then forwarder batches one at a time: first instant, then at `plan.latency`.

    The forwarder runs at the template's log level with metrics on, so what it prints per order
    is what CloudWatch Logs would ingest (`output_bytes` reads the size of the captured stdout).
    With `receiver`, the forwarder POSTs to that process instead of the stack's in-process receiver.
    """
    n = plan.overhead_batches * 10 + plan.ratio_orders
    with local_stack(n, recorder, servers, overrides={}) as stack:
        assert stack.sandbox is not None and stack.receiver is not None
        polled = stack.poll(load_event("scheduled"))
        if polled.get("enqueued") != n:
            raise RuntimeError(f"the poll enqueued {polled.get('enqueued')} of {n}")
        source_fn = stack.forwarder
        overrides = dict(source_fn.overrides)
        if receiver is not None:
            overrides["TARGET_URL"] = receiver.url
            recorder.hosts[urlsplit(receiver.url).netloc] = RECEIVER

        def set_latency(seconds: float) -> None:
            if receiver is not None:
                receiver.set_latency(seconds)
            else:
                assert stack.receiver is not None
                stack.receiver.faults.latency = seconds

        forwarder = TimedFunction(source_fn.spec, overrides=overrides, timeout=source_fn.timeout)
        forwarder.cold_start()
        source = stack.event_source(forwarder)
        phases = []
        printed_before = output_bytes()
        for latency, batches in ((0.0, plan.overhead_batches), (plan.latency, math.ceil(plan.ratio_orders / 10))):
            set_latency(latency)
            first = len(forwarder.invocations)
            for _ in range(batches):
                if not source.poll_once():
                    raise RuntimeError("the queue ran dry before every batch was forwarded")
            figures = [batch_figures(recorder, i) for i in forwarder.invocations[first:]]
            phases.append({**phase_summary(figures, latency), "per_batch": figures})
        printed = output_bytes() - printed_before
        if receiver is not None:
            stats = receiver.stats()
            delivered, duplicates = set(stats["delivered"]), int(stats["duplicates"])
        else:
            delivered, duplicates = stack.receiver.delivered_ids(), stack.receiver.duplicates()
        return {
            "orders": n,
            "receiver": "a process of its own" if receiver is not None else "in the benchmark's process",
            "phases": phases,
            "mark_calls": len(stack.sandbox.mark_calls),
            "mark_calls_ideal": ideal_mark_calls(n),
            "delivered": len(delivered),
            "duplicates": duplicates,
            "still_pending": len(stack.sandbox.pending(stack.options.system_id)),
            "failures": source.stats.failures,
            "log_bytes_per_order": printed / n,
            "log_note": "forwarder stdout at the template's log level with metrics on (JSON logs + EMF), "
            "without Lambda's own START/END/REPORT lines",
        }


# --- the big poll --------------------------------------------------------------------------------------


def _purge(stack: LocalStack, stop: threading.Event) -> None:
    """Keep the queue empty while the big poll runs, as a fast consumer would.

    moto's SQS rescans the whole queue on every send and receive, so a queue that a drain cannot
    keep shallow slows every send down with its depth (AWS does not): the poll would then measure
    moto. Purging stands in for the consumer; the poll worker checks the bodies as it sends them.
    """
    while not stop.is_set():
        stack.sqs.purge_queue(QueueUrl=stack.queue_url)
        stop.wait(PURGE_EVERY)


def big_poll(plan: Plan, recorder: Recorder, servers: Servers, workdir: Path) -> dict[str, Any]:
    n = plan.big_poll
    with local_stack(n, recorder, servers, overrides=dict(QUIET)) as stack:
        assert stack.sandbox is not None
        fn = stack.poller
        out = workdir / "poll.json"
        spec = {
            "function": {**asdict(fn.spec), "code_dir": str(fn.spec.code_dir), "events": {}},
            "overrides": dict(fn.overrides),
            "hosts": dict(recorder.hosts),
            "event": load_event("scheduled"),
            "out": str(out),
        }
        spec_path = workdir / "poll-spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        child = subprocess.Popen([sys.executable, "-m", "traede_bench.poll_worker", str(spec_path)])
        stop = threading.Event()
        purger = threading.Thread(target=_purge, args=(stack, stop), daemon=True)
        purger.start()
        max_depth = 0
        try:
            deadline = time.monotonic() + 600
            while child.poll() is None and time.monotonic() < deadline:
                max_depth = max(max_depth, stack.queue_depth(stack.queue_url))
                time.sleep(0.5)
            if child.wait(timeout=1) != 0:
                raise RuntimeError(f"the poll worker failed (exit {child.returncode})")
        finally:
            stop.set()
            purger.join(timeout=5)
            if child.poll() is None:
                child.kill()
                child.wait()
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        if report["error"]:
            raise RuntimeError(f"the poller failed: {report['error']}")
        export_requests = [r for r in stack.sandbox.requests_log if r["path"].endswith("/export")]
        report.update(
            {
                "n": n,
                "export_calls": stack.sandbox.export_calls,
                "lines_requested": bool(export_requests)
                and all("includes%5B%5D=lines" in r["query"] for r in export_requests),
                "max_queue_depth": max_depth,
            }
        )
        return report


# --- cold start ----------------------------------------------------------------------------------------

_IMPORT = (
    "import importlib.util, json, sys, time\n"
    "spec = importlib.util.spec_from_file_location('handler_under_test', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['handler_under_test'] = module\n"
    "t0 = time.perf_counter()\n"
    "spec.loader.exec_module(module)\n"
    "print(json.dumps(time.perf_counter() - t0))\n"
)


def init_times(plan: Plan, recorder: Recorder, servers: Servers) -> dict[str, Any]:
    """Each handler module's import (its cold start, clients included) in fresh interpreters: the median."""
    out: dict[str, Any] = {}
    with local_stack(1, recorder, servers, overrides=dict(QUIET)) as stack:
        for fn in (stack.poller, stack.forwarder):
            path = fn.spec.code_dir / (fn.spec.module.replace(".", "/") + ".py")
            env = {**os.environ, **fn.environment}
            samples = []
            for _ in range(plan.init_runs):
                done = subprocess.run(
                    [sys.executable, "-c", _IMPORT, str(path)], env=env, capture_output=True, text=True, check=True
                )
                samples.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
            out[fn.spec.logical_id] = {"median_ms": median(samples), "samples_ms": samples}
    return out
