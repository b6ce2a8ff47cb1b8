"""A deterministic simulation of the whole export, explored by Hypothesis's stateful testing.

The real `Poller` and `Forwarder` run on the real `ExportLedger` (in memory in the unit tier, on
DynamoDB Local in the integration tier), against a simulated Traede, ERP and SQS. Each poll and
each forwarder invocation is an actor on a thread of its own, but only one runs at a time: it
stops before every call it makes to the outside world (a ledger read or write, a POST, a mark, a
send), and the machine decides which actor goes next and how that call ends: answered, failed,
written with its answer lost, resent by botocore, refused, slower than the lease, or the Lambda
killed right there. Time is a model clock that only rules move.

The invariants, checked as events happen and at quiescence:
* nothing is marked that the ERP did not store;
* the ERP never goes from a newer version of an order back to an older one;
* a version is stored again only when its earlier acceptance never reached the ledger (the answer
  was lost, the Lambda died, or the record's write failed), and never while a POST of it is live;
* at quiescence (faults healed, the DLQ redriven, the queue drained, leases run out, one more
  poll), every order's newest version is stored and marked, unless an edit fell into the window
  the API leaves open (a mark made after an edit that no poll had fetched), which is counted.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ReadTimeoutError
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.events import inbound_order
from traede_export.forward import Forwarder, partial_batch_response
from traede_export.ledger import ExportLedger
from traede_export.ledger_store import Item, Store, Update
from traede_export.models import Attr, InboundOrder, OrderRef, UnreadableMessage, epoch_ms, version_of
from traede_export.poll import Poller
from traede_export.queue import OutboundMessage, SendReport
from traede_export.target import DeliveryResult, Outcome
from traede_export.traede import ExportStats, walk_pages
from traede_local.memory_store import failure

SYSTEM = "sim"
START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
FORWARDER_TIMEOUT, POLLER_TIMEOUT, MARGIN = 60.0, 240.0, 10.0
VISIBILITY, MAX_RECEIVES, LEASE = 420.0, 5, 7200
MAX_ACTORS = 3


class Killed(BaseException):
    """The Lambda was killed: nothing it does from here on reaches the world."""


# ------------------------------------------------------------------------------------ actors


class Actor:
    """One Lambda invocation on a thread of its own that runs only when the machine lets it.

    `point(kind)` is called by the actor before each call to the outside world: it hands control
    back to the machine and returns the outcome the machine chose for that call.
    """

    def __init__(self, name: str, lambda_deadline: float, work: Callable[[Actor], Any]) -> None:
        self.name = name
        self.lambda_deadline = lambda_deadline
        self.pending = ""  # the kind of call it waits to make
        self.choice = 0
        self.done = self.dead = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._work = work
        self._go = threading.Semaphore(0)
        self._parked = threading.Semaphore(0)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._parked.acquire()

    def _run(self) -> None:
        try:
            self.result = self._work(self)
        except BaseException as exc:  # Killed, or an error that fails the invocation
            self.error = exc
        finally:
            self.done = True
            self.pending = ""
            self._parked.release()

    def point(self, kind: str) -> int:
        if self.dead:
            raise Killed
        self.pending = kind
        self._parked.release()
        self._go.acquire()
        if self.dead:
            raise Killed
        return self.choice

    def advance(self, choice: int) -> None:
        self.choice = choice
        self._go.release()
        self._parked.acquire()

    def kill(self) -> None:
        self.dead = True
        if not self.done:
            self._go.release()
            self._parked.acquire()


class InlineExecutor(Executor):
    """Runs each task at once on the caller's thread: an actor never leaves its own thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Killed:
            raise
        except BaseException as exc:
            future.set_exception(exc)
        return future


# ------------------------------------------------------------------------- the outside world

LEDGER_OUTCOMES = ("ok", "lost", "fail", "resent")
# "late": the client's read timeout gives up while the ERP still works on the request; it commits
# before the model clock moves on (well within any lease).
POST_OUTCOMES = ("2xx", "5xx", "lost", "4xx", "late")
MARK_OUTCOMES = ("ok", "5xx", "404")
SEND_OUTCOMES = ("ok", "fail")
EXPORT_OUTCOMES = ("ok", "5xx", "401")


def outcome(kind: str, choice: int) -> str:
    table = {
        "ledger": LEDGER_OUTCOMES,
        "post": POST_OUTCOMES,
        "mark": MARK_OUTCOMES,
        "send": SEND_OUTCOMES,
        "export": EXPORT_OUTCOMES,
    }[kind.split(":")[0]]
    return table[choice % len(table)]


class SteppedStore:
    """The ledger's store as one actor sees it: each call waits for its turn and ends as chosen."""

    def __init__(self, actor: Actor, inner: Store) -> None:
        self._actor, self._inner = actor, inner

    def _call(self, kind: str, call: Callable[[], Any]) -> Any:
        how = outcome("ledger", self._actor.point(f"ledger:{kind}"))
        if how == "fail":
            raise failure(kind)
        answer = call()
        if how == "resent":  # botocore sends a request again after its first answer was lost
            return call()
        if how == "lost":
            raise ReadTimeoutError(endpoint_url="sim://ledger")
        return answer

    def update(self, update: Update) -> bool:
        return bool(self._call("update", lambda: self._inner.update(update)))

    def update_many(self, updates: Sequence[Update]) -> list[bool]:
        return list(self._call("transact", lambda: self._inner.update_many(updates)))

    def get_many(self, keys: Sequence[str]) -> dict[str, Item]:
        return dict(self._call("read", lambda: self._inner.get_many(keys)))

    def get(self, key: str) -> Item | None:
        return self._inner.get(key)

    def scan(self, prefix: str) -> Iterator[Item]:
        return self._inner.scan(prefix)


@dataclass
class Message:
    message_id: str
    body: str
    attributes: dict[str, dict[str, str]]
    receives: int = 0
    visible_at: float = 0.0


@dataclass
class Request:
    """A POST the ERP has received and not yet answered."""

    actor: Actor
    order_id: int
    version: str
    key: str


@dataclass
class World:
    """Traede, the ERP and the queues, on the model clock."""

    clock: float = START
    orders: dict[int, str] = field(default_factory=dict)  # id -> updated_at
    changed: dict[int, float] = field(default_factory=dict)
    exported: dict[int, float] = field(default_factory=dict)  # id -> last mark
    fetched: dict[int, set[str]] = field(default_factory=dict)  # versions any poll enqueued
    stored: list[tuple[int, str, str]] = field(default_factory=list)  # (order, version, key) the ERP kept
    in_flight: list[Request] = field(default_factory=list)
    late: list[Request] = field(default_factory=list)  # requests the ERP still works on, their client gone
    queue: list[Message] = field(default_factory=list)
    dlq: list[Message] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # order -> the version whose edit was lost in the window the API leaves open (a later edit is not)
    swallowed: dict[int, str] = field(default_factory=dict)
    alarms: dict[str, int] = field(default_factory=dict)
    next_message: int = 0

    def body(self, order_id: int, updated_at: str | None = None) -> dict[str, Any]:
        return {"id": order_id, "updated_at": updated_at or self.orders[order_id], "number": f"PO-{order_id}"}

    def pending(self, since: float | None = None) -> list[int]:
        return [
            i
            for i in sorted(self.orders)
            if i not in self.exported
            or self.changed[i] > self.exported[i]
            or (since is not None and self.exported[i] < since)
        ]

    def edit(self, order_id: int) -> None:
        """Someone edits the order in Traede: a new `updated_at`, pending again."""
        self.clock += 1
        self.orders[order_id] = datetime.fromtimestamp(self.clock, UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.changed[order_id] = self.clock

    def send(self, body: str, attributes: dict[str, dict[str, str]]) -> None:
        self.next_message += 1
        self.queue.append(Message(f"m{self.next_message}", body, dict(attributes), visible_at=self.clock))

    def is_swallowed(self, order_id: int) -> bool:
        """The order's current version is the one a mark swallowed; a later edit must arrive."""
        return self.swallowed.get(order_id) == version_of(self.orders[order_id])

    def alarm(self, metric: str, count: int = 1) -> None:
        if count:
            self.alarms[metric] = self.alarms.get(metric, 0) + count

    def finish_late(self, ledger_key: Callable[[int], Item | None]) -> None:
        """The ERP commits the requests whose clients stopped waiting."""
        for request in self.late:
            self.in_flight.remove(request)
            self.store(request, ledger_key)
        self.late.clear()

    def latest_stored(self, order_id: int) -> str:
        return max((v for o, v, _ in self.stored if o == order_id), default="")

    def store(self, request: Request, ledger_key: Callable[[int], Item | None]) -> None:
        """The ERP keeps an order: never older than what it has, never again what the ledger knows it has."""
        if request.version < self.latest_stored(request.order_id):
            self.violations.append(f"the ERP went back to {request.key}")
        if any(k == request.key for _, _, k in self.stored):
            item = ledger_key(request.order_id) or {}
            if item.get("delivered_key", {}).get("S") == request.key:
                self.violations.append(f"{request.key} POSTed again though the ledger recorded its delivery")
        if ":reexport:" in request.key:
            # A re-export redelivers what was delivered before its instant, never what was delivered after it.
            item = ledger_key(request.order_id) or {}
            since = epoch_ms(request.key.split(":reexport:")[1])
            delivered_ms = int(item.get("delivered_ms", {}).get("N", "0"))
            if item.get("delivered_version", {}).get("S") == request.version and delivered_ms >= since:
                self.violations.append(f"{request.key} POSTed though the ledger recorded a delivery after its instant")
        self.stored.append((request.order_id, request.version, request.key))


class SimTarget:
    """The ERP as one forwarder invocation reaches it: a POST is sent, then answered, at two points."""

    def __init__(self, world: World, actor: Actor, ledger_item: Callable[[int], Item | None]) -> None:
        self._world, self._actor, self._item = world, actor, ledger_item

    def deliver(self, body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        order = json.loads(body)
        request = Request(self._actor, order["id"], version_of(order["updated_at"]), idempotency_key)
        self._actor.point("post:send")
        live = [r for r in self._world.in_flight if (r.order_id, r.version) == (request.order_id, request.version)]
        if live:
            self._world.violations.append(f"{idempotency_key} POSTed while another POST of its version was live")
        self._world.in_flight.append(request)
        try:
            how = outcome("post", self._actor.point("post:answer"))
        except Killed:
            self._world.in_flight.remove(request)
            self._world.store(request, self._item)  # the ERP stores what a dead Lambda sent
            raise
        if how == "late":
            self._world.late.append(request)  # still live in the ERP: committed by `finish_late`
            return DeliveryResult(Outcome.FAILED, "no answer from receiving system: ReadTimeout", None)
        self._world.in_flight.remove(request)
        if self._world.clock > self._actor.lambda_deadline - MARGIN:
            how = "lost"  # the read timeout, clamped to the invocation's deadline, ran out first
        if how in ("2xx", "lost"):
            self._world.store(request, self._item)
        if how == "2xx":
            return DeliveryResult(Outcome.DELIVERED, "HTTP 201", 201)
        if how == "4xx":
            return DeliveryResult(Outcome.REJECTED, "HTTP 422: refused", 422)
        return DeliveryResult(Outcome.FAILED, "no answer" if how == "lost" else "HTTP 503", None)


class SimMarker:
    """Traede's mark-as-exported: checks that the ERP holds each version a note names."""

    def __init__(self, world: World, actor: Actor) -> None:
        self._world, self._actor = world, actor

    def mark_as_exported(self, notes: Sequence[tuple[int, str]]) -> None:
        how = outcome("mark", self._actor.point("mark"))
        if how == "5xx":
            raise TraedeError("mark-as-exported answered HTTP 503", 503)
        if how == "404":
            raise TraedeError("mark-as-exported answered HTTP 404", 404)
        w = self._world
        for order_id, text in notes:
            key = text.rsplit("Idempotency-Key ", 1)[1]
            version = key.split(":", 3)[3].split(":reexport:")[0]
            if (order_id, version) not in {(o, v) for o, v, _ in w.stored}:
                w.violations.append(f"order {order_id} marked on {version}, which the ERP never stored")
            current = version_of(w.orders[order_id])
            if current > version and current not in w.fetched.get(order_id, set()):
                w.swallowed[order_id] = current  # an edit no poll had fetched: the API's mark covers it
            w.exported[order_id] = w.clock


class SimQueue:
    def __init__(self, world: World, actor: Actor, dead_letters: bool) -> None:
        self._world, self._actor, self._dead_letters = world, actor, dead_letters

    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        if outcome("send", self._actor.point("send")) == "fail":
            return SendReport(failed={m.entry_id: "throttled" for m in messages})
        w = self._world
        for m in messages:
            w.next_message += 1
            target = w.dlq if self._dead_letters else w.queue
            target.append(Message(f"m{w.next_message}", m.body, dict(m.attributes), visible_at=w.clock))
            if not self._dead_letters:
                order = json.loads(m.body)
                w.fetched.setdefault(order["id"], set()).add(version_of(order["updated_at"]))
        return SendReport(sent=[m.entry_id for m in messages])


class SimExport:
    """Traede's export over the world's pending orders, in pages of two, walked by the real rules."""

    def __init__(self, world: World, actor: Actor) -> None:
        self._world, self._actor = world, actor

    def iter_export(
        self,
        options: ExportOptions,
        stats: ExportStats,
        not_exported_since: datetime | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> Iterator[list[dict[str, Any]]]:
        since = not_exported_since.timestamp() if not_exported_since else None

        def fetch(page: int) -> list[Any]:
            how = outcome("export", self._actor.point("export"))
            if how != "ok":
                raise TraedeError(f"export page {page} answered HTTP {how}", 503 if how == "5xx" else 401)
            pending = self._world.pending(since)
            return [self._world.body(i) for i in pending[page * 2 : page * 2 + 2]]

        return walk_pages(fetch, 2, stats, keep_going)


class NoOffload:
    def is_large(self, body: str) -> bool:
        return False

    def offload_order(self, ref: OrderRef, body: str, attributes: Any) -> tuple[str, Any]:
        raise AssertionError("no large orders in the simulation")

    def offload(self, key: str, body: str, attributes: Any) -> tuple[str, Any]:
        raise AssertionError("no large orders in the simulation")


# ----------------------------------------------------------------------------------- machine

KILL = -1
# Mostly the happy outcome (0, which shrinking prefers), sometimes a fault, rarely a killed Lambda.
CHOICES = st.sampled_from([0] * 9 + [1, 2, 3, 4, KILL])


class ExportMachine(RuleBasedStateMachine):
    """Subclasses give `make_store()`: a fresh, empty store for each example."""

    stats: Counter[str] = Counter()  # across every example of the run: what was explored

    def make_store(self) -> Store:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        logging.disable(logging.ERROR)  # the forwarder logs each record; thousands of examples would flood
        self.stats["examples"] += 1
        self.world = World()
        self.system = f"{SYSTEM}-{uuid.uuid4().hex[:8]}"  # a key space of its own on a shared table
        self.store = self.make_store()
        self.actors: list[Actor] = []
        self.receiving: dict[str, list[str]] = {}  # actor -> its messages' ids
        self.runs = 0
        for order_id in (1, 2):
            self.world.edit(order_id)

    # -- wiring the real code to the world ------------------------------------------------

    def ledger(self, actor: Actor) -> ExportLedger:
        return ExportLedger(SteppedStore(actor, self.store), self.system, lambda: self.world.clock)

    def raw_item(self, order_id: int) -> Item | None:
        return self.store.get(f"order#{self.system}#{order_id}")

    def spawn_poll(self, reexport: bool) -> Actor:
        self.runs += 1
        run_id = f"run-{self.runs}"
        since = datetime.fromtimestamp(self.world.clock - 1, UTC) if reexport else None

        def work(actor: Actor) -> Any:
            poller = Poller(
                traede=SimExport(self.world, actor),
                ledger=self.ledger(actor),
                queue=SimQueue(self.world, actor, dead_letters=False),
                dlq=SimQueue(self.world, actor, dead_letters=True),
                system_id=self.system,
                options=ExportOptions(page_size=2),
                lease_seconds=LEASE,
                claims=NoOffload(),
                executor=InlineExecutor,
            )
            deadline = actor.lambda_deadline - MARGIN
            result = poller.run(run_id, since, keep_going=lambda: self.world.clock < deadline)
            self.world.alarm("EnqueueFailures", result.failed)
            if result.error:
                self.world.alarm("PollerErrors")
            return result

        return self._start(f"poll-{self.runs}", POLLER_TIMEOUT, work)

    def spawn_forwarder(self, messages: list[Message]) -> Actor:
        for m in messages:
            m.receives += 1
            m.visible_at = self.world.clock + VISIBILITY
        ids = [m.message_id for m in messages]

        def work(actor: Actor) -> Any:
            forwarder = Forwarder(
                target=SimTarget(self.world, actor, self.raw_item),
                traede=SimMarker(self.world, actor),
                ledger=self.ledger(actor),
                dlq=SimQueue(self.world, actor, dead_letters=True),
                system_id=self.system,
                pool=InlineExecutor(),
            )
            records = [_record(m) for m in messages]
            deadline = actor.lambda_deadline - MARGIN
            outcome = forwarder.forward(records, lambda: deadline - self.world.clock)
            s = outcome.summary
            for metric, count in (("StaleDeliveries", s.stale), ("VersionWentBackwards", s.went_backwards)):
                self.world.alarm(metric, count)
            return partial_batch_response(ids, outcome)

        actor = self._start(f"forward-{len(self.actors)}", FORWARDER_TIMEOUT, work)
        self.receiving[actor.name] = ids
        return actor

    def _start(self, name: str, timeout: float, work: Callable[[Actor], Any]) -> Actor:
        actor = Actor(name, self.world.clock + timeout, work)
        self.actors.append(actor)
        actor.start()
        self._settle(actor)
        return actor

    def _settle(self, actor: Actor) -> None:
        """An invocation that ended: SQS deletes what it settled; the rest comes back after the timeout."""
        if not actor.done or actor.name not in self.receiving:
            return
        ids = self.receiving.pop(actor.name)
        failed = set(ids)
        if actor.error is None:
            failed = {f["itemIdentifier"] for f in actor.result["batchItemFailures"]}
        elif not isinstance(actor.error, Killed):
            self.world.alarm("ForwarderErrors")
            note(f"{actor.name} failed: {actor.error!r}")
        if isinstance(actor.error, Killed):
            self.world.alarm("ForwarderErrors")  # a Lambda killed by its timeout counts as an error
        self.world.queue = [m for m in self.world.queue if m.message_id in failed or m.message_id not in ids]

    def live(self) -> list[Actor]:
        return [a for a in self.actors if not a.done]

    def visible(self) -> list[Message]:
        return [m for m in self.world.queue if m.visible_at <= self.world.clock]

    def receive(self, count: int) -> list[Message]:
        """SQS hands out up to `count` visible messages; past the receive limit they go to the DLQ."""
        batch: list[Message] = []
        for m in self.visible():
            if m.receives >= MAX_RECEIVES:
                self.world.queue.remove(m)
                self.world.dlq.append(m)
                self.world.alarm("DeadLetters")
                continue
            batch.append(m)
            if len(batch) == count:
                break
        return batch

    def step_actor(self, actor: Actor, choice: int) -> None:
        if self.world.clock > actor.lambda_deadline:
            actor.kill()  # Lambda's timeout
        else:
            actor.advance(choice)
        self._settle(actor)

    # -- rules ----------------------------------------------------------------------------

    @precondition(lambda self: not any(a.name.startswith("poll") for a in self.live()))
    @rule(reexport=st.booleans())
    def poll(self, reexport: bool) -> None:
        self.stats["re-exports" if reexport else "polls"] += 1
        self.spawn_poll(reexport)

    @precondition(lambda self: len(self.live()) < MAX_ACTORS)
    @rule(size=st.integers(1, 3))
    def invoke_forwarder(self, size: int) -> None:
        messages = self.receive(size)
        if messages:
            self.stats["forwarder invocations"] += 1
            self.spawn_forwarder(messages)

    @precondition(lambda self: len(self.live()) < MAX_ACTORS and any(self.receiving.values()))
    @rule(data=st.data())
    def hand_a_message_out_twice(self, data: st.DataObject) -> None:
        """SQS's at-least-once delivery: a message already in flight goes to a second invocation too."""
        ids = sorted({i for batch in self.receiving.values() for i in batch})
        chosen = data.draw(st.sampled_from(ids))
        message = next((m for m in self.world.queue if m.message_id == chosen), None)
        if message is not None:
            self.stats["copies handed out twice"] += 1
            self.spawn_forwarder([message])

    @precondition(lambda self: bool(self.live()))
    @rule(schedule=st.lists(st.tuples(st.integers(0, MAX_ACTORS - 1), CHOICES), min_size=1, max_size=12))
    def run(self, schedule: list[tuple[int, int]]) -> None:
        """Live invocations take turns, one call to the outside world each, ended as chosen."""
        for index, choice in schedule:
            live = self.live()
            if not live:
                return
            actor = live[index % len(live)]
            if choice == KILL:
                note(f"{actor.name} killed before {actor.pending}")
                self.stats["killed"] += 1
                actor.kill()
                self._settle(actor)
                continue
            how = outcome(actor.pending, choice) if actor.pending else "run"
            note(f"{actor.name}: {actor.pending} -> {how}")
            self.stats["steps"] += 1
            self.stats[f"{actor.pending.split(':')[0]} {how}"] += 1
            self.step_actor(actor, choice)

    @rule(seconds=st.sampled_from([1, 31, 61, VISIBILITY + 1, LEASE + 1]))
    def tick(self, seconds: float) -> None:
        self.world.finish_late(self.raw_item)
        self.world.clock += seconds
        for actor in self.live():
            if self.world.clock > actor.lambda_deadline:
                actor.kill()
                self._settle(actor)

    @rule(order_id=st.sampled_from([1, 2]), what=st.sampled_from(["edit", "replay", "replay an older version"]))
    def outside(self, order_id: int, what: str) -> None:
        """Someone edits the order in Traede (a new `updated_at`, pending again), or an operator
        puts a copy on the queue: of the current version, or an older one from a file."""
        self.stats[what] += 1
        if what == "edit":
            self.world.edit(order_id)
            return
        body = self.world.body(order_id)
        if what != "replay":
            body["updated_at"] = datetime.fromtimestamp(START - 3600, UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.world.send(json.dumps(body), {Attr.ORDER_ID: {"DataType": "String", "StringValue": str(order_id)}})

    @precondition(lambda self: bool(self.world.dlq))
    @rule()
    def redrive(self) -> None:
        self.stats["redrives"] += 1
        for m in self.world.dlq:
            self.world.send(m.body, {k: v for k, v in m.attributes.items() if k != Attr.FAILURE_REASON})
        self.world.dlq.clear()

    @invariant()
    def nothing_went_wrong_so_far(self) -> None:
        assert not self.world.violations, self.world.violations

    # -- quiescence -----------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self.quiesce()
        finally:
            for actor in self.actors:
                actor.kill()
            logging.disable(logging.NOTSET)

    def quiesce(self) -> None:
        w = self.world
        w.finish_late(self.raw_item)
        for actor in self.live():  # faults healed: what runs, runs to its end
            while not actor.done:
                self.step_actor(actor, 0)
        self.no_silent_stall()
        for _ in range(4):
            self.redrive() if w.dlq else None
            self.drain()
            w.clock += LEASE + 1
            poll = self.spawn_poll(reexport=False)
            while not poll.done:
                self.step_actor(poll, 0)
            self.drain()
            done = not w.pending() and not w.queue and not w.dlq
            if done and all(w.latest_stored(i) == version_of(w.orders[i]) or w.is_swallowed(i) for i in w.orders):
                break
        assert not w.violations, w.violations
        self.stats["edits lost in the API's window (counted, not failures)"] += len(w.swallowed)
        self.stats["versions stored again after an unrecorded acceptance"] += len(w.stored) - len(set(w.stored))
        for order_id, updated_at in w.orders.items():
            current = version_of(updated_at)
            if w.is_swallowed(order_id) and w.latest_stored(order_id) < current:
                continue  # the API's mark is not conditional on a version: counted, not a failure
            assert w.latest_stored(order_id) == current, (
                f"order {order_id}: ERP has {w.latest_stored(order_id)}, Traede {current}"
            )
            assert order_id not in w.pending(), f"order {order_id} still pending in Traede"
        assert not w.queue and not w.dlq

    def no_silent_stall(self) -> None:
        """Scheduled polls, no operator, less than a lease: an order still not exported then has stalled,
        and some alarm must say so (the contract: within one poll interval)."""
        w = self.world
        start = w.clock
        for _ in range(6):
            self.drain()
            if w.clock - start > LEASE / 2:
                break
            w.clock += 301
            poll = self.spawn_poll(reexport=False)
            while not poll.done:
                self.step_actor(poll, 0)
        self.drain()
        stalled = [
            i
            for i in w.orders
            if not w.is_swallowed(i) and (w.latest_stored(i) != version_of(w.orders[i]) or i in w.pending())
        ]
        if stalled and not w.alarms and not w.dlq:
            w.violations.append(f"orders {stalled} stalled with no alarm")

    def drain(self) -> None:
        """Run the queue dry, one invocation at a time, every call answered."""
        for _ in range(200):
            messages = self.receive(10)
            if not messages:
                if not self.world.queue:
                    return
                self.world.clock = min(m.visible_at for m in self.world.queue)
                continue
            actor = self.spawn_forwarder(messages)
            while not actor.done:
                self.step_actor(actor, 0)
        raise AssertionError("the queue never drained")


def _record(m: Message) -> InboundOrder | UnreadableMessage:
    """A message as the forwarder's handler reads it (no large orders here)."""
    record = {
        "messageId": m.message_id,
        "body": m.body,
        "attributes": {"ApproximateReceiveCount": str(m.receives)},
        "messageAttributes": {
            k: {"dataType": v["DataType"], "stringValue": v["StringValue"]} for k, v in m.attributes.items()
        },
    }
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    return inbound_order(SQSRecord(record))
