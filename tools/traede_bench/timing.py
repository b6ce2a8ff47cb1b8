"""Where time goes: every outbound call of this process, timed, and a wall-clock breakdown of a window.

Benchmark-only instrumentation, installed before a handler's cold start so that the clients it
builds carry it; production code is untouched:

* AWS: every botocore client created afterwards gets hooks from its first event of a call
  (`provide-client-params`) to `after-call`: the span covers serialising, signing, retries, the HTTP
  round trip and parsing. DynamoDB calls are asked
  for `ReturnConsumedCapacity=TOTAL`, so request units are measured rather than guessed.
* HTTP through requests (the Traede client and the receiving system's client): every
  `HTTPAdapter.send` is timed and classified by host, so urllib3's own retries sit inside one span.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# The categories of a breakdown, in the order tables and plots show them.
RECEIVER = "receiver"
TRAEDE = "traede"
DYNAMODB = "dynamodb"
SQS_OTHER = "sqs+other aws"
OWN = "own code"
CATEGORIES = (RECEIVER, TRAEDE, DYNAMODB, SQS_OTHER, OWN)
OTHER_HTTP = "other http"

# Operations that accept ReturnConsumedCapacity.
_CAPACITY_OPS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchGetItem",
        "BatchWriteItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_WRITE_OPS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
SQS_CHUNK = 64 * 1024  # SQS bills each 64 KiB of a request's payload as one request


@dataclass(frozen=True)
class Span:
    category: str
    operation: str
    started: float
    ended: float
    read_units: float = 0.0
    write_units: float = 0.0
    billed_requests: int = 0  # SQS: 64 KiB chunks of the payload
    error: bool = False


@dataclass
class Recorder:
    """Spans of every instrumented call, from any thread."""

    hosts: dict[str, str] = field(default_factory=dict)  # "host:port" -> category, for HTTP via requests
    spans: list[Span] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, span: Span) -> None:
        with self._lock:
            self.spans.append(span)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()

    def within(self, started: float, ended: float) -> list[Span]:
        """Spans that began inside the window (a call that began inside it ends inside it too)."""
        with self._lock:
            return [s for s in self.spans if started <= s.started <= ended]

    def classify(self, url: str) -> str:
        return self.hosts.get(urlsplit(url).netloc, OTHER_HTTP)


_installed: Recorder | None = None


def install(recorder: Recorder) -> Recorder:
    """Instrument botocore clients and requests sessions in this process (once; later calls reuse it)."""
    global _installed
    if _installed is not None:
        _installed.hosts.update(recorder.hosts)
        return _installed
    _installed = recorder
    _instrument_botocore(recorder)
    _instrument_requests(recorder)
    return recorder


def _instrument_botocore(recorder: Recorder) -> None:
    import botocore.session

    create_client = botocore.session.Session.create_client

    @functools.wraps(create_client)
    def create_instrumented(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = create_client(self, *args, **kwargs)
        attach(client, recorder)
        return client

    botocore.session.Session.create_client = create_instrumented  # type: ignore[method-assign]


def attach(client: Any, recorder: Recorder) -> Any:
    """Register the timing hooks on one botocore client."""
    service = client.meta.service_model.service_name
    category = DYNAMODB if service == "dynamodb" else SQS_OTHER
    events = client.meta.events

    def before(context: dict[str, Any], params: dict[str, Any], model: Any, **_: Any) -> None:
        if service == "dynamodb" and model.name in _CAPACITY_OPS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        if service == "sqs":
            context["bench_billed"] = sqs_billed_requests(model.name, params)
        if model.name == "TransactWriteItems":
            context["bench_transaction_items"] = len(params.get("TransactItems", []))
        context["bench_started"] = time.monotonic()

    def after(context: dict[str, Any], model: Any, parsed: Any = None, exception: Any = None, **_: Any) -> None:
        started = context.pop("bench_started", None)
        if started is None:
            return
        read = write = 0.0
        failed = exception is not None or bool((parsed or {}).get("Error"))
        if service == "dynamodb":
            read, write = consumed_units(model.name, parsed or {}, failed, context.pop("bench_transaction_items", 0))
        recorder.add(
            Span(
                category,
                f"{service}.{model.name}",
                started,
                time.monotonic(),
                read_units=read,
                write_units=write,
                billed_requests=int(context.pop("bench_billed", 0)),
                error=failed,
            )
        )

    # provide-client-params is the first event of a call: the span covers validating, serialising,
    # signing, retries, the HTTP round trip and parsing.
    events.register("provide-client-params", before)
    events.register("after-call", after)
    events.register("after-call-error", after)
    return client


def consumed_units(
    operation: str, parsed: Mapping[str, Any], failed: bool, transaction_items: int = 0
) -> tuple[float, float]:
    """(read units, write units) as DynamoDB reported them; a refused conditional write still costs one."""
    if operation == "TransactWriteItems":
        # AWS bills 2 write units per item (the ledger's items are under 1 KB); DynamoDB Local
        # under-reports transactions (2.0 for a transaction of 5), so count the items instead.
        return 0.0, 2.0 * transaction_items
    consumed = parsed.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    units = sum(float(e.get("CapacityUnits", 0) or 0) for e in entries)
    if operation in _WRITE_OPS:
        return 0.0, units or (1.0 if failed else 0.0)
    return units, 0.0


def sqs_billed_requests(operation: str, params: Mapping[str, Any]) -> int:
    """Requests as SQS bills them: one per 64 KiB chunk of the payload, at least one per call."""
    if operation == "SendMessageBatch":
        size = sum(len(str(e.get("MessageBody", "")).encode()) for e in params.get("Entries", []))
    elif operation == "SendMessage":
        size = len(str(params.get("MessageBody", "")).encode())
    else:
        return 1
    return max(1, math.ceil(size / SQS_CHUNK))


def _instrument_requests(recorder: Recorder) -> None:
    from requests.adapters import HTTPAdapter

    send = HTTPAdapter.send

    @functools.wraps(send)
    def timed_send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        failed = True
        try:
            response = send(self, request, *args, **kwargs)
            failed = response.status_code >= 500
            return response
        finally:
            url = str(request.url)
            recorder.add(
                Span(
                    recorder.classify(url),
                    f"{request.method} {urlsplit(url).path}",
                    started,
                    time.monotonic(),
                    error=failed,
                )
            )

    HTTPAdapter.send = timed_send  # type: ignore[method-assign]


# --- arithmetic on spans ---------------------------------------------------------------------


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Wall-clock seconds covered by at least one of the (start, end) intervals."""
    total = 0.0
    end = -math.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def breakdown(spans: Sequence[Span], started: float, ended: float) -> dict[str, float]:
    """Split the window's wall-clock time between the categories; the parts add up to its length.

    An instant during which calls of k categories are open counts 1/k to each (concurrent POSTs of
    one category count once); an instant with no call open is our own code.
    """
    events: list[tuple[float, int, str]] = []
    for s in spans:
        a, b = max(s.started, started), min(s.ended, ended)
        if b > a:
            events += [(a, 1, s.category), (b, -1, s.category)]
    events.sort(key=lambda e: (e[0], e[1]))
    parts = dict.fromkeys(CATEGORIES, 0.0)
    open_: dict[str, int] = {}
    at = started
    for when, delta, category in [*events, (ended, 0, "")]:
        if when > at:
            active = [c for c, n in open_.items() if n > 0]
            for c in active or [OWN]:
                parts[c] = parts.get(c, 0.0) + (when - at) / (len(active) or 1)
            at = when
        if delta:
            open_[category] = open_.get(category, 0) + delta
    return parts


@dataclass(frozen=True)
class CallCounts:
    """What the calls inside a window cost: counts by operation, DynamoDB units, SQS billed requests."""

    by_operation: dict[str, int]
    read_units: float
    write_units: float
    sqs_billed_requests: int

    @classmethod
    def of(cls, spans: Iterable[Span]) -> CallCounts:
        by_op: dict[str, int] = {}
        read = write = 0.0
        billed = 0
        for s in spans:
            by_op[s.operation] = by_op.get(s.operation, 0) + 1
            read += s.read_units
            write += s.write_units
            if s.operation.startswith("sqs."):
                billed += s.billed_requests
        return cls(dict(sorted(by_op.items())), read, write, billed)

    def calls(self, predicate: Callable[[str], bool]) -> int:
        return sum(n for op, n in self.by_operation.items() if predicate(op))
