"""Throughput benchmark: the real handlers against moto + DynamoDB Local, the Traede sandbox and a slow receiver.

`python -m traede_ops.bench [--quick] [--out DIR]` (what `make bench` runs) writes
`DIR/bench.json` and `DIR/throughput.png` and prints a table.

How it runs, and why:

* moto runs in a process of its own (as AWS is not inside the Lambda), so its CPU does not
  contend for this process's GIL. moto's SQS slows down quadratically with queue depth, so the
  queue is kept shallow throughout (see `/work/shared/tooling-notes.md`).
* The poller runs in a fresh subprocess per measurement: the real handler module, imported by
  file path with the environment LocalStack derives from the template. There its AWS calls are
  timed with botocore `before-call`/`after-call` hooks and its Traede export calls by wrapping
  `TraedeClient.export_page`, so the poll's own time can be told apart from waiting. Its peak
  memory is the subprocess's VmHWM (peak RSS).
* The forwarder runs in this process in `DRAINERS` threads (the template's
  ForwarderMaxConcurrency), each emulating Lambda's SQS event source: receive up to 10 messages,
  wait up to `BATCH_WINDOW` to fill a batch, invoke the real handler, delete what succeeded.
  The handler is called directly rather than through `LocalFunction.invoke`, which holds a
  process-wide lock for the whole invocation and would serialise the two forwarders.
* End-to-end cells (full): the poller is paused (SIGSTOP/SIGCONT of our own child) while the
  queue holds more than `MAX_DEPTH` messages: the forwarder is the bottleneck then, and a deep
  moto queue would measure moto, not this code. The pause time is reported.
* The ledger is on DynamoDB Local (AWS's own engine, a JVM of its own, reached through
  `AWS_ENDPOINT_URL_DYNAMODB`, which the poll subprocess inherits): moto's DynamoDB is slower and
  serialises, so it would measure moto, not this code.
* Sampled cells (large N x latency): the poll is real and complete; the forwarder handles a
  sample of full batches per latency, the rest is received and deleted undelivered. Their
  end-to-end figure is an estimate and is labelled as one.

Diagnostics: `BENCH_TRACEMALLOC=1` makes the poll worker trace allocations during the
invocation and print the peak and the largest allocation sites to stderr (it slows the poll).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_ID = "local-erp"
PAGE_SIZE = 60  # the sandbox's (and Traede's) maximum `limit`; the template asks for it
MARK_BATCH = 10
SQS_BATCH = 10
DRAINERS = 2  # template: ForwarderMaxConcurrency default, the event source's MaximumConcurrency
BATCH_WINDOW = 5.0  # seconds: the template's MaximumBatchingWindowInSeconds
MAX_DEPTH = 100  # queue depth above which the poller is paused (full cells)
VISIBILITY = 900  # seconds: no redelivery of a slow batch during a measurement
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    latencies: tuple[float, ...]
    full_limit: dict[float, int]  # largest N run end to end in full, per latency; bigger is sampled
    sample_batches: int  # forwarded full batches per latency in a sampled run
    big_poll: int  # the one-poll measurement (fetched + enqueued by one poll)
    ratio_latencies: tuple[float, ...]
    ratio_batches: int
    init_runs: int


FULL = Plan(
    sizes=(100, 1000, 10_000),
    latencies=(0.0, 0.05, 0.2),
    full_limit={0.0: 1000, 0.05: 1000, 0.2: 1000},
    sample_batches=40,
    big_poll=10_000,
    ratio_latencies=(0.05, 0.1, 0.2),
    ratio_batches=10,
    init_runs=5,
)
QUICK = Plan(
    sizes=(100, 400),
    latencies=(0.0, 0.05),
    full_limit={0.0: 100, 0.05: 100},
    sample_batches=6,
    big_poll=400,
    ratio_latencies=(0.1,),
    ratio_batches=3,
    init_runs=2,
)


# --- pure helpers ------------------------------------------------------------------------------


def seeded_for(pending: int) -> int:
    """How many sandbox seed orders give `pending` exportable ones.

    `seed_orders` makes every i % 10 == 3 a draft and every i % 10 == 7 closed; the template's
    defaults (IncludeOpen/IncludeClosed false) leave both out of the export.
    """

    def exportable(m: int) -> int:
        return m - 2 * (m // 10) - (m % 10 > 3) - (m % 10 > 7)

    m = pending
    while exportable(m) < pending:
        m += 1
    return m


def ideal_export_calls(n: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(n / page_size))


def ideal_mark_calls(n: int) -> int:
    return math.ceil(n / MARK_BATCH)


def union_seconds(intervals: Sequence[tuple[float, float]]) -> float:
    """Wall-clock seconds covered by at least one of the (start, end) intervals."""
    total = 0.0
    end = -math.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def floor_ratio(records: int, latency: float, seconds: float) -> float:
    """The sequential floor (records x latency) over the measured time: how many times faster."""
    return records * latency / seconds if seconds > 0 else math.inf


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


# --- moto in a process of its own -----------------------------------------------------------------

_MOTO = (
    "import logging, sys\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "from moto.server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
    "server.start()\n"
    "host, port = server.get_host_and_port()\n"
    "print(f'http://{host}:{port}', flush=True)\n"
    "sys.stdin.read()\n"
    "server.stop()\n"
)


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("moto server did not start")
        os.environ.update({**AWS_ENV, "AWS_ENDPOINT_URL": url})
        os.environ.pop("AWS_PROFILE", None)
        yield url
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the server stops when its stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the poller, in a subprocess ------------------------------------------------------------------


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in MB.

    Not `ru_maxrss`: Linux carries the parent's peak across fork/exec into it, so a child of a
    big parent would report the parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


class CallTimer:
    """Times every botocore call of the clients it is attached to: before-call to after-call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)
        client.meta.events.register("after-call-error", self._after)
        return client

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.monotonic()

    def _after(self, context: dict[str, Any], model: Any = None, **_: Any) -> None:
        started = context.pop("bench_started", None)
        if started is not None:
            with self._lock:
                self.calls.append((getattr(model, "name", "?"), started, time.monotonic()))


def poll_worker(spec_path: str) -> None:
    """Entry point of the poller subprocess: cold start, one invocation, a JSON report."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    os.environ.update(spec["env"])
    import traede_export.wiring as wiring
    from traede_local.lambda_runtime import LambdaContext

    timer = CallTimer()
    make_client = wiring.aws_client
    setattr(wiring, "aws_client", lambda service: timer.attach(make_client(service)))  # noqa: B010

    started = time.monotonic()
    loader = importlib.util.spec_from_file_location(f"bench_poller_{uuid.uuid4().hex[:6]}", spec["path"])
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    sys.modules[loader.name] = module
    loader.loader.exec_module(module)
    init_seconds = time.monotonic() - started

    traede = module.RUNTIME.poller.traede
    export_page = traede.export_page
    traede_calls: list[tuple[float, float]] = []

    def timed_export_page(*args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic()
        try:
            return export_page(*args, **kwargs)
        finally:
            traede_calls.append((t0, time.monotonic()))

    setattr(traede, "export_page", timed_export_page)  # noqa: B010
    timer.calls.clear()  # nothing before the invocation counts
    rss_before = _status_mb("VmRSS")
    traced = bool(os.environ.get("BENCH_TRACEMALLOC"))
    if traced:
        import tracemalloc

        tracemalloc.start(25)
    context = LambdaContext(spec["name"], float(spec["timeout"]))
    invoke_started = time.monotonic()
    error = None
    try:
        result = getattr(module, spec["function"])(spec["event"], context)
    except Exception as exc:  # reported, not raised: the parent prints it
        result, error = {}, f"{type(exc).__name__}: {exc}"
    invoke_ended = time.monotonic()
    if traced:
        snapshot = tracemalloc.take_snapshot()
        print("tracemalloc peak MB", tracemalloc.get_traced_memory()[1] / 2**20, file=sys.stderr)
        for stat in snapshot.statistics("traceback")[:3]:
            print(stat, file=sys.stderr)
            for line in stat.traceback.format():
                print(line, file=sys.stderr)
    total = invoke_ended - invoke_started
    aws = [(a, b) for _, a, b in timer.calls]
    by_op: dict[str, list[float]] = {}
    for name, a, b in timer.calls:
        by_op.setdefault(name, []).append(b - a)
    waiting = union_seconds(aws + traede_calls)
    report = {
        "result": result,
        "error": error,
        "init_seconds": init_seconds,
        "invoke_started": invoke_started,
        "invoke_ended": invoke_ended,
        "seconds": total,
        "aws_seconds": union_seconds(aws),
        "aws_seconds_summed": sum(b - a for a, b in aws),
        "aws_calls": {k: {"calls": len(v), "seconds_summed": round(sum(v), 3)} for k, v in sorted(by_op.items())},
        "traede_seconds": union_seconds(traede_calls),
        "traede_calls": len(traede_calls),
        "own_seconds": total - waiting,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _status_mb("VmHWM"),
    }
    Path(spec["out"]).write_text(json.dumps(report), encoding="utf-8")


class PollProcess:
    """The poller handler, invoked once in a fresh interpreter."""

    def __init__(self, stack: Any, workdir: Path) -> None:
        from traede_local.events import load_event

        fn = stack.poller
        tag = uuid.uuid4().hex[:8]
        self._out = workdir / f"poll-{tag}.json"
        spec_path = workdir / f"poll-{tag}-spec.json"
        spec = {
            "env": {**fn.environment, **QUIET},
            "path": str(fn.spec.code_dir / (fn.spec.module.replace(".", "/") + ".py")),
            "function": fn.spec.function,
            "name": fn.spec.logical_id,
            "timeout": fn.timeout or fn.spec.timeout,
            "event": load_event("scheduled"),
            "out": str(self._out),
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "traede_ops.bench", "--poll-worker", str(spec_path)], cwd=ROOT
        )
        self.paused_seconds = 0.0
        self._paused_at: float | None = None

    def done(self) -> bool:
        return self.proc.poll() is not None

    def pause(self, on: bool) -> None:
        if self.done():
            return
        if on and self._paused_at is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self._paused_at = time.monotonic()
        elif not on and self._paused_at is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.paused_seconds += time.monotonic() - self._paused_at
            self._paused_at = None

    def report(self) -> dict[str, Any]:
        self.pause(False)
        if self.proc.wait(timeout=600) != 0 or not self._out.exists():
            raise RuntimeError(f"poll worker failed (exit {self.proc.returncode})")
        report: dict[str, Any] = json.loads(self._out.read_text(encoding="utf-8"))
        report["paused_seconds"] = self.paused_seconds
        if report["error"]:
            raise RuntimeError(f"poller failed: {report['error']}")
        return report

    def kill(self) -> None:
        if not self.done():
            self.pause(False)
            self.proc.kill()
            self.proc.wait()


# --- the forwarder's event source, in threads --------------------------------------------------------


@dataclass
class Invocation:
    records: int
    seconds: float
    started: float
    ended: float
    failures: int
    latency: float


@dataclass
class Tally:
    invocations: list[Invocation] = field(default_factory=list)
    discarded: int = 0
    stash: list[dict[str, Any]] = field(default_factory=list)
    max_depth: int = 0
    bodies: int = 0
    bodies_with_lines: int = 0


class Controller:
    """Decides per batch: forward it (at the receiver's current latency) or receive-and-delete it."""

    def __init__(self, receiver: Any, forward: bool, stash_limit: int = 0) -> None:
        self._receiver = receiver
        self.forward = forward
        self.stash_limit = stash_limit

    def ticket(self) -> float | None:
        return float(self._receiver.faults.latency) if self.forward else None


class EventSource:
    """Lambda's SQS event source for the forwarder: `DRAINERS` concurrent invocations at most."""

    def __init__(self, stack: Any, controller: Controller, poll_done: Callable[[], bool]) -> None:
        import boto3

        from traede_local.lambda_runtime import LambdaContext, sqs_event

        self._stack = stack
        self._controller = controller
        self._poll_done = poll_done
        self._sqs_event = sqs_event
        fn = stack.forwarder
        self._module = fn.module or fn.cold_start()
        self._handler = getattr(self._module, fn.spec.function)
        self._context_args = (fn.spec.logical_id, float(fn.timeout or fn.spec.timeout))
        self._context_class = LambdaContext
        self._boto3 = boto3
        self._arn = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.tally = Tally()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(DRAINERS):
            self._threads.append(threading.Thread(target=self._drain, name=f"drainer-{i}", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)

    def _client(self) -> Any:
        return self._boto3.session.Session().client("sqs")

    def _receive(self, sqs: Any, count: int) -> list[dict[str, Any]]:
        answer = sqs.receive_message(
            QueueUrl=self._stack.queue_url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=VISIBILITY,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages", []))

    def _delete(self, sqs: Any, messages: Sequence[dict[str, Any]]) -> None:
        if messages:
            sqs.delete_message_batch(
                QueueUrl=self._stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def _drain(self) -> None:
        sqs = self._client()
        held: list[dict[str, Any]] = []
        window_ends = 0.0
        while not self._stop.is_set():
            got = self._receive(sqs, SQS_BATCH - len(held))
            if got and not held:
                window_ends = time.monotonic() + BATCH_WINDOW
            held.extend(got)
            ready = len(held) >= SQS_BATCH or (held and (time.monotonic() >= window_ends or self._poll_done()))
            if ready:
                self._handle(sqs, held)
                held = []
            elif not got:
                time.sleep(0.02)
        self._delete(sqs, held)

    def _handle(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        with_lines = sum(bool(json.loads(m["Body"]).get("lines")) for m in messages)
        with self._lock:
            self.tally.bodies += len(messages)
            self.tally.bodies_with_lines += with_lines
        latency = self._controller.ticket()
        if latency is None:
            self._delete(sqs, messages)
            with self._lock:
                self.tally.discarded += len(messages)
                room = self._controller.stash_limit - len(self.tally.stash)
                self.tally.stash.extend(messages[: max(0, room)])
            return
        event = self._sqs_event(messages, self._arn)
        started = time.monotonic()
        response = self._handler(event, self._context_class(*self._context_args))
        ended = time.monotonic()
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        self._delete(sqs, [m for m in messages if m["MessageId"] not in failed])
        with self._lock:
            self.tally.invocations.append(
                Invocation(len(messages), ended - started, started, ended, len(failed), latency)
            )

    def visible(self) -> int:
        attrs = self._stack.sqs.get_queue_attributes(
            QueueUrl=self._stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depth = int(attrs["ApproximateNumberOfMessages"])
        self.tally.max_depth = max(self.tally.max_depth, depth)
        return depth


# --- runs ------------------------------------------------------------------------------------------


def new_stack(orders: int, latency: float, moto_url: str) -> Any:
    from traede_local.faults import ReceiverFaults
    from traede_local.local_stack import LocalOptions, LocalStack

    options = LocalOptions(
        orders=seeded_for(orders),
        system_id=SYSTEM_ID,
        target_faults=ReceiverFaults(latency=latency),
        visibility_timeout=VISIBILITY,
        overrides=dict(QUIET),
    )
    from traede_local.dynamodb_local import ENDPOINT_VARIABLE

    stack = LocalStack(options, moto_endpoint=moto_url, dynamodb_endpoint=os.environ[ENDPOINT_VARIABLE]).start()
    assert stack.sandbox is not None and stack.receiver is not None
    pending = len(stack.sandbox.pending(SYSTEM_ID))
    if pending != orders:
        stack.stop()
        raise RuntimeError(f"the sandbox has {pending} exportable orders, expected {orders}")
    return stack


def api_calls(stack: Any, n: int, forwarded: int) -> dict[str, Any]:
    marks = len(stack.sandbox.mark_calls)
    return {
        "export_calls": stack.sandbox.export_calls,
        "export_calls_ideal": ideal_export_calls(n),
        "mark_calls": marks,
        "mark_calls_ideal": ideal_mark_calls(forwarded),
        "mark_calls_per_order": marks / forwarded if forwarded else math.nan,
        "target_posts": stack.receiver.attempts,
        "target_posts_per_order": stack.receiver.attempts / forwarded if forwarded else math.nan,
    }


def forwarder_figures(invocations: Sequence[Invocation]) -> dict[str, Any]:
    full = [i for i in invocations if i.records == SQS_BATCH]
    return {
        "invocations": len(invocations),
        "full_batches": len(full),
        "handler_seconds_median": median([i.seconds for i in invocations]),
        "floor_ratio_median": median([floor_ratio(i.records, i.latency, i.seconds) for i in full])
        if full and full[0].latency > 0
        else None,
    }


def run_full(n: int, latency: float, moto_url: str, workdir: Path) -> dict[str, Any]:
    """Poll and forward every order; end to end until all are delivered and marked.

    A poll that ends with orders still pending (see the page-shift finding in the report) is
    followed by another, as the schedule would; the number of polls is reported.
    """
    stack = new_stack(n, latency, moto_url)
    expected = set(stack.sandbox.pending(SYSTEM_ID))
    polls: list[PollProcess] = []
    reports: list[dict[str, Any]] = []
    source: EventSource | None = None
    try:
        polls.append(PollProcess(stack, workdir))
        source = EventSource(stack, Controller(stack.receiver, True), lambda: polls[-1].done())
        source.start()
        stop = time.monotonic() + 600
        while time.monotonic() < stop:
            poll = polls[-1]
            poll.pause(source.visible() > MAX_DEPTH)
            if poll.done():
                if not reports or len(reports) < len(polls):
                    reports.append(poll.report())
                finished = expected <= stack.sandbox.exported(SYSTEM_ID)
                if finished and expected <= stack.receiver.delivered_ids():
                    break
                if stack.queue_depth(stack.queue_url) == 0 and not finished and len(polls) < 20:
                    polls.append(PollProcess(stack, workdir))  # what the next scheduled poll would pick up
            time.sleep(0.05)
        else:
            raise RuntimeError(f"N={n} latency={latency}: not every order delivered and marked in 600 s")
        source.stop()
        invocations = source.tally.invocations
        ended = max(i.ended for i in invocations)
        seconds = ended - reports[0]["invoke_started"]
        return {
            "n": n,
            "latency_ms": round(latency * 1000),
            "mode": "full",
            "note": "every order polled, delivered and marked",
            "e2e_seconds": seconds,
            "orders_per_second": n / seconds,
            "polls": len(reports),
            "fetched_per_poll": [r["result"].get("fetched") for r in reports],
            "poll_seconds": [r["seconds"] for r in reports],
            "poll_paused_seconds": sum(r["paused_seconds"] for r in reports),
            "max_queue_depth": source.tally.max_depth,
            "forwarded_orders": sum(i.records for i in invocations),
            "failures": sum(i.failures for i in invocations),
            **forwarder_figures(invocations),
            **api_calls(stack, n, n),
            "export_calls_ideal": ideal_export_calls(n),
        }
    finally:
        if source is not None:
            source.stop()
        for poll in polls:
            poll.kill()
        stack.stop()


def feed_and_forward(stack: Any, messages: Sequence[dict[str, Any]], latency: float) -> list[Invocation]:
    """Put `messages` back on the (empty) queue a little at a time and forward them with DRAINERS invocations."""
    stack.receiver.faults.latency = latency
    fed = threading.Event()
    source = EventSource(stack, Controller(stack.receiver, True), fed.is_set)
    source.start()
    try:
        sent = 0
        while sent < len(messages):
            if source.visible() >= 4 * SQS_BATCH:
                time.sleep(0.01)
                continue
            batch = messages[sent : sent + SQS_BATCH]
            stack.sqs.send_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": m["Body"],
                        "MessageAttributes": {
                            k: {"DataType": a["DataType"], "StringValue": a["StringValue"]}
                            for k, a in m.get("MessageAttributes", {}).items()
                        },
                    }
                    for i, m in enumerate(batch)
                ],
            )
            sent += len(batch)
        fed.set()
        stop = time.monotonic() + 300
        while sum(i.records for i in source.tally.invocations) < len(messages) and time.monotonic() < stop:
            time.sleep(0.05)
    finally:
        source.stop()
    return source.tally.invocations


def run_big(n: int, latencies: Sequence[float], per_phase: int, moto_url: str, workdir: Path) -> dict[str, Any]:
    """One complete poll of n orders while DRAINERS threads receive and delete (keeping the queue shallow).

    Nothing is marked during the poll, so its pages are stable. Afterwards a sample of the
    poller's own messages (`per_phase` batches per latency) is fed back and forwarded: the
    sampled cells for this n.
    """
    stack = new_stack(n, 0.0, moto_url)
    poll: PollProcess | None = None
    source: EventSource | None = None
    try:
        poll = PollProcess(stack, workdir)
        source = EventSource(
            stack, Controller(stack.receiver, False, per_phase * SQS_BATCH * len(latencies)), poll.done
        )
        source.start()
        stop = time.monotonic() + 900
        while time.monotonic() < stop:
            source.visible()
            if poll.done() and stack.queue_depth(stack.queue_url) == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the poll of {n} did not finish in 900 s")
        source.stop()
        report = poll.report()
        result = report["result"]
        stash = source.tally.stash
        cells = []
        for k, latency in enumerate(latencies):
            sample = feed_and_forward(
                stack, stash[k * per_phase * SQS_BATCH : (k + 1) * per_phase * SQS_BATCH], latency
            )
            window = max(i.ended for i in sample) - min(i.started for i in sample)
            forwarded = sum(i.records for i in sample)
            rate = forwarded / window
            estimate = max(report["seconds"], n / rate)
            cells.append(
                {
                    "n": n,
                    "latency_ms": round(latency * 1000),
                    "mode": "sampled",
                    "note": (
                        f"forwarder measured on {len(sample)} of {math.ceil(n / SQS_BATCH)} batches ({forwarded} of "
                        f"the poll's messages, {DRAINERS} concurrent invocations, after the poll); e2e is an "
                        "ESTIMATE = max(measured one-poll seconds, n / sampled forwarder orders/s), which assumes "
                        "one poll fetches everything even while the forwarder marks (it does not: see polls in "
                        "the full cells)"
                    ),
                    "e2e_seconds": estimate,
                    "orders_per_second": n / estimate,
                    "sampled_forwarder_orders_per_second": rate,
                    "poll_seconds": report["seconds"],
                    "forwarded_orders": forwarded,
                    "failures": sum(i.failures for i in sample),
                    **forwarder_figures(sample),
                }
            )
        forwarded_all = sum(c["forwarded_orders"] for c in cells)
        calls = api_calls(stack, n, forwarded_all)
        calls["export_calls_ideal"] = ideal_export_calls(n)
        calls["note"] = f"export calls: the whole poll of {n}; mark calls and POSTs: the {forwarded_all} forwarded"
        poll_figures = {
            "n": n,
            "fetched": result.get("fetched"),
            "enqueued": result.get("enqueued"),
            "pages": result.get("pages"),
            "seconds": report["seconds"],
            "aws_seconds": report["aws_seconds"],
            "aws_seconds_summed_over_threads": report["aws_seconds_summed"],
            "aws_calls": report["aws_calls"],
            "traede_seconds": report["traede_seconds"],
            "traede_calls": report["traede_calls"],
            "own_seconds": report["own_seconds"],
            "init_seconds_in_worker": report["init_seconds"],
            "peak_rss_mb": report["peak_rss_mb"],
            "rss_before_invoke_mb": report["rss_before_mb"],
            "peak_rss_delta_mb": report["peak_rss_mb"] - report["rss_before_mb"],
            "memory_method": "VmHWM (peak RSS) of the poller subprocess, whole process as Lambda's Max Memory Used, "
            "and its delta over VmRSS just before the invocation (not ru_maxrss: it inherits the parent's peak)",
            "bodies_include_lines": _bodies_have_lines(stack) and source.tally.bodies_with_lines == source.tally.bodies,
            "bodies_checked": source.tally.bodies,
            "includes_requested": stack.poller.environment.get("EXPORT_INCLUDES", ""),
            "max_queue_depth": source.tally.max_depth,
            "drained_by": f"{DRAINERS} threads receiving and deleting (nothing marked during the poll)",
            "time_split": "aws = union of botocore before-call..after-call intervals (signing, HTTP to moto or "
            "DynamoDB Local, parsing); traede = union of export_page calls (HTTP to the sandbox, incl. the first "
            "secret fetch); own = total - union(aws, traede)",
        }
        return {"poll": poll_figures, "cells": cells, "api_calls": calls}
    finally:
        if source is not None:
            source.stop()
        if poll is not None:
            poll.kill()
        stack.stop()


def _bodies_have_lines(stack: Any) -> bool:
    """Whether every export request asked for lines (the sandbox logs every request)."""
    log = stack.sandbox.requests_log
    return bool(log) and all("includes%5B%5D=lines" in r["query"] for r in log if r["path"].endswith("/export"))


def run_ratio(
    latencies: Sequence[float], batches: int, moto_url: str, workdir: Path, timer: CallTimer
) -> list[dict[str, Any]]:
    """Forwarder handler time for full batches of 10, one invocation at a time, nothing else running."""
    n = batches * SQS_BATCH * len(latencies)
    stack = new_stack(n, latencies[0], moto_url)
    try:
        PollProcess(stack, workdir).report()
        import boto3

        sqs = boto3.session.Session().client("sqs")
        source = EventSource(stack, Controller(stack.receiver, True), lambda: True)
        out = []
        for latency in latencies:
            stack.receiver.faults.latency = latency
            aws: list[float] = []
            for _ in range(batches):
                got: list[dict[str, Any]] = []
                for _ in range(20):
                    got.extend(source._receive(sqs, SQS_BATCH - len(got)))
                    if len(got) == SQS_BATCH:
                        break
                timer.calls.clear()
                source._handle(sqs, got)
                last = source.tally.invocations[-1]
                aws.append(union_seconds([(a, b) for _, a, b in timer.calls if a >= last.started and b <= last.ended]))
            sample = [i for i in source.tally.invocations if i.latency == latency]
            seconds = [i.seconds for i in sample]
            out.append(
                {
                    "latency_ms": round(latency * 1000),
                    "batches": len(sample),
                    "records_per_batch": SQS_BATCH,
                    "handler_seconds_median": median(seconds),
                    "handler_seconds_min": min(seconds),
                    "handler_seconds_max": max(seconds),
                    "sequential_floor_seconds": SQS_BATCH * latency,
                    "floor_ratio_median": floor_ratio(SQS_BATCH, latency, median(seconds)),
                    "aws_wait_seconds_median": median(aws),
                    "floor_ratio_without_aws_wait": floor_ratio(SQS_BATCH, latency, median(seconds) - median(aws)),
                    "aws_calls_per_batch": len(timer.calls),
                }
            )
        return out
    finally:
        stack.stop()


_INIT = (
    "import importlib.util, json, sys, time\n"
    "spec = importlib.util.spec_from_file_location('handler_under_test', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules['handler_under_test'] = module\n"
    "t0 = time.perf_counter()\n"
    "spec.loader.exec_module(module)\n"
    "print(json.dumps(time.perf_counter() - t0))\n"
)


def run_init(stack: Any, runs: int) -> dict[str, Any]:
    """Cold import of each handler module in a fresh interpreter (python -c), median of `runs`."""
    out: dict[str, Any] = {}
    for fn in (stack.poller, stack.forwarder):
        path = fn.spec.code_dir / (fn.spec.module.replace(".", "/") + ".py")
        env = {**os.environ, **fn.environment, **QUIET}
        samples = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", _INIT, str(path)], env=env, capture_output=True, text=True, check=True
            )
            samples.append(float(done.stdout.strip().splitlines()[-1]))
        out[fn.spec.logical_id] = {
            "median_ms": median(samples) * 1000,
            "samples_ms": [round(s * 1000, 1) for s in samples],
        }
    return out


# --- output ------------------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    ratio = next((r for r in results["forwarder_ratio"] if r["latency_ms"] == 100), None)
    if ratio is not None:
        rows.append(
            {
                "target": "forwarder >= 8x below the sequential floor at 100 ms",
                "measured": f"{ratio['floor_ratio_median']:.1f}x (median of {ratio['batches']} full batches)",
                "ok": ratio["floor_ratio_median"] >= 8,
            }
        )
    for cell in results["cells"]:
        if cell["mode"] == "full":
            rows.append(
                {
                    "target": f"mark calls == ceil(N/10), N={cell['n']}, {cell['latency_ms']} ms",
                    "measured": f"{cell['mark_calls']} (ideal {cell['mark_calls_ideal']})",
                    "ok": cell["mark_calls"] == cell["mark_calls_ideal"],
                }
            )
    for name, figures in results["init"].items():
        rows.append(
            {
                "target": f"init < 300 ms: {name}",
                "measured": f"{figures['median_ms']:.0f} ms (median of {len(figures['samples_ms'])})",
                "ok": figures["median_ms"] < 300,
            }
        )
    poll = results["big_poll"]
    rows.append(
        {
            "target": f"{poll['n']} orders fetched+enqueued by one poll < 60 s",
            "measured": f"{poll['seconds']:.1f} s total = {poll['aws_seconds']:.1f} s AWS (moto + DynamoDB Local) + "
            f"{poll['traede_seconds']:.1f} s Traede + {poll['own_seconds']:.1f} s own",
            "ok": poll["seconds"] < 60 and poll["enqueued"] == poll["n"],
        }
    )
    rows.append(
        {
            "target": "poller peak memory < 256 MB",
            "measured": f"{poll['peak_rss_mb']:.0f} MB peak RSS ({poll['peak_rss_delta_mb']:+.0f} MB during the poll)",
            "ok": poll["peak_rss_mb"] < 256,
        }
    )
    return rows


def print_tables(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    grid = Table(title="End to end: poll + forward until delivered and marked")
    for column in (
        "N",
        "latency",
        "mode",
        "orders/s",
        "e2e s",
        "fwd median s",
        "ratio",
        "exports",
        "marks",
        "POST/order",
    ):
        grid.add_column(column, justify="right")
    for c in results["cells"]:
        ratio = c.get("floor_ratio_median")
        grid.add_row(
            f"{c['n']:,}",
            f"{c['latency_ms']} ms",
            c["mode"] + (" (est.)" if c["mode"] == "sampled" else ""),
            f"{c['orders_per_second']:.1f}",
            f"{c['e2e_seconds']:.1f}",
            f"{c['handler_seconds_median']:.3f}",
            "-" if ratio is None else f"{ratio:.1f}x",
            f"{c['export_calls']}/{c['export_calls_ideal']}" if "export_calls" in c else "-",
            f"{c['mark_calls']}/{c['mark_calls_ideal']}" if "mark_calls" in c else "-",
            f"{c['target_posts_per_order']:.2f}" if "target_posts_per_order" in c else "-",
        )
    console.print(grid)
    for c in results["cells"]:
        if c["mode"] == "sampled":
            console.print(f"  N={c['n']:,} {c['latency_ms']} ms: {c['note']}")
    sampled_calls = results.get("sampled_api_calls")
    if sampled_calls:
        console.print(
            f"  sampled run API calls: exports {sampled_calls['export_calls']}/{sampled_calls['export_calls_ideal']}, "
            f"marks {sampled_calls['mark_calls']}/{sampled_calls['mark_calls_ideal']}, "
            f"POSTs/order {sampled_calls['target_posts_per_order']:.2f} ({sampled_calls['note']})"
        )

    ratio_table = Table(title="Forwarder: full batches of 10, one invocation at a time")
    for column in ("latency", "batches", "median s", "min s", "max s", "floor s", "floor/handler"):
        ratio_table.add_column(column, justify="right")
    for r in results["forwarder_ratio"]:
        ratio_table.add_row(
            f"{r['latency_ms']} ms",
            str(r["batches"]),
            f"{r['handler_seconds_median']:.3f}",
            f"{r['handler_seconds_min']:.3f}",
            f"{r['handler_seconds_max']:.3f}",
            f"{r['sequential_floor_seconds']:.2f}",
            f"{r['floor_ratio_median']:.1f}x",
        )
    console.print(ratio_table)

    target_table = Table(title=f"Targets (run took {results['run_seconds']:.0f} s)")
    for column in ("target", "measured", "ok"):
        target_table.add_column(column)
    for t in results["targets"]:
        target_table.add_row(t["target"], t["measured"], "[green]yes[/]" if t["ok"] else "[red]NO[/]")
    console.print(target_table)
    poll = results["big_poll"]
    console.print(
        f"one poll of {poll['n']:,}: {poll['fetched']} fetched, {poll['enqueued']} enqueued in {poll['pages']} pages; "
        f"AWS calls {poll['aws_calls']}; lines included: {poll['bodies_include_lines']}; "
        f"max queue depth {poll['max_queue_depth']}"
    )


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for latency in sorted({c["latency_ms"] for c in results["cells"]}):
        cells = sorted((c for c in results["cells"] if c["latency_ms"] == latency), key=lambda c: c["n"])
        xs = [c["n"] for c in cells]
        ys = [c["orders_per_second"] for c in cells]
        (line,) = ax.plot(xs, ys, marker="o", label=f"target latency {latency} ms")
        est = [c for c in cells if c["mode"] == "sampled"]
        if est:
            ax.plot(
                [c["n"] for c in est],
                [c["orders_per_second"] for c in est],
                linestyle="none",
                marker="o",
                markersize=11,
                markerfacecolor="none",
                color=line.get_color(),
            )
    ax.set_xscale("log")
    ax.set_xlabel("orders (N)")
    ax.set_ylabel("end-to-end orders/s")
    ax.set_title("traede-export throughput (moto + DynamoDB Local + sandbox); hollow ring = sampled estimate")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, floats rounded."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def run(plan: Plan, out: Path) -> dict[str, Any]:
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    workdir = out / ".work"
    workdir.mkdir(exist_ok=True)
    os.environ.update(QUIET)
    # Time the in-process forwarder's AWS calls too (only read where one invocation runs alone).
    import traede_export.wiring as wiring

    timer = CallTimer()
    make_client = wiring.aws_client
    setattr(wiring, "aws_client", lambda service: timer.attach(make_client(service)))  # noqa: B010
    results: dict[str, Any] = {"plan": asdict(plan), "cells": []}
    from traede_local.dynamodb_local import dynamodb_local

    with moto_process() as moto_url, dynamodb_local():
        probe = new_stack(plan.sizes[0], 0.0, moto_url)
        try:
            print("init times (fresh interpreters)...", file=sys.stderr)
            results["init"] = run_init(probe, plan.init_runs)
        finally:
            probe.stop()
        print("forwarder vs the sequential floor...", file=sys.stderr)
        results["forwarder_ratio"] = run_ratio(plan.ratio_latencies, plan.ratio_batches, moto_url, workdir, timer)
        sampled_latencies = [lat for lat in plan.latencies if plan.full_limit[lat] < plan.big_poll]
        for n in plan.sizes:
            for latency in plan.latencies:
                if n <= plan.full_limit[latency]:
                    print(f"end to end: N={n} latency={latency * 1000:.0f} ms...", file=sys.stderr)
                    results["cells"].append(run_full(n, latency, moto_url, workdir))
        print(
            f"one poll of {plan.big_poll} with forwarder samples at {[x * 1000 for x in sampled_latencies]} ms...",
            file=sys.stderr,
        )
        big = run_big(plan.big_poll, sampled_latencies or [0.0], plan.sample_batches, moto_url, workdir)
        results["big_poll"] = big["poll"]
        results["sampled_api_calls"] = big["api_calls"]
        if sampled_latencies:
            results["cells"].extend(big["cells"])
    results["cells"].sort(key=lambda c: (c["latency_ms"], c["n"]))
    results["run_seconds"] = time.monotonic() - started
    results["targets"] = targets(results)
    results["setup"] = {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "drainers": DRAINERS,
        "batch_window_seconds": BATCH_WINDOW,
        "max_queue_depth": MAX_DEPTH,
        "moto": "separate process (ThreadedMotoServer): SQS, Secrets Manager",
        "dynamodb": "DynamoDB Local, in-memory, separate JVM",
        "poller": "fresh subprocess per run, real handler module",
        "forwarder": f"in-process, {DRAINERS} threads calling the real handler",
    }
    results = _clean(results)
    (out / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    plot(results, out / "throughput.png")
    for leftover in workdir.iterdir():
        leftover.unlink()
    workdir.rmdir()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m traede_ops.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (about a minute)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory")
    parser.add_argument("--poll-worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.poll_worker:
        poll_worker(args.poll_worker)
        return 0
    # Handler output (Powertools' EMF auto-flush at 100 values per metric prints even with metrics
    # disabled) goes to a file, so the tables stay readable.
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "handler-stdout.log").open("w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        results = run(QUICK if args.quick else FULL, args.out)
    print_tables(results)
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'throughput.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
