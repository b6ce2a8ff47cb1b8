"""The forwarder's logic: deliver a batch concurrently, then mark what arrived, 10 at a time.

The rules, per order and version (a version is an `updated_at`):
* Only the newest version of an order in a batch acts; older copies are superseded.
* A version older than one the ledger has enqueued or delivered is superseded: no POST, no mark.
* A version is POSTed at most once under the delivery lease (`ExportLedger.begin_deliveries`: the
  batch's leases in one call, each with its own condition), so two versions of one order are never
  on their way to the ERP at once.
* A re-export copy is POSTed again (under its own key) only if the version was last delivered
  before the re-export's instant; otherwise it rides on that delivery.
* A mark is made only for a version this batch delivered, or one delivered earlier and not marked
  since: a replayed or duplicate copy of a marked version never marks again, which would swallow
  an edit that no poll has seen yet. A poll that fetched the version after its mark re-marks it.
* A mark is recorded in the ledger before it is made, after every POST of the batch, on condition
  that no newer version was delivered or marked meanwhile; a mark that is not made is taken back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.errors import ConfigurationError
from traede_export.events import MismatchedLargeOrder, UnresolvedLargeOrder
from traede_export.group_commit import GroupCommit
from traede_export.ledger import LedgerEntry, PartialWrite
from traede_export.models import (
    MAX_MARK_BATCH,
    Attr,
    InboundOrder,
    OrderRef,
    SqsAttributes,
    UnreadableMessage,
    chunk,
    epoch_ms,
    string_attributes,
)
from traede_export.queue import OutboundMessage, SendReport
from traede_export.samples import is_sample, sample_key
from traede_export.target import DeliveryResult, Outcome
from traede_export.traede import TraedeError

if TYPE_CHECKING:  # a TypedDict, for annotations only: Powertools' batch package costs ~30 ms to import
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger(child=True)
LEASE_GRACE_SECONDS = 30  # the delivery lease outlives the invocation by this much
NOT_STARTED = "not started: the invocation is close to its timeout"
MAX_REASON_CHARS = 1000
# How long a delivery's record waits for its batch mates' (answered within milliseconds of each
# other, they share one ledger call); it adds at most this to the window for a duplicate POST.
RECORD_LINGER_SECONDS = 0.01


@dataclass(frozen=True)
class RecordResult:
    ok: bool
    reason: str


@dataclass
class ForwardSummary:
    received: int = 0
    invalid: int = 0
    delivered: int = 0
    already_delivered: int = 0
    already_marked: int = 0
    superseded: int = 0
    rejected: int = 0
    failed: int = 0
    not_started: int = 0
    deferred: int = 0  # another version of the order was being delivered
    stale: int = 0  # delivered, but a newer version had been delivered first
    went_backwards: int = 0  # the latest poll saw an older version than the ledger delivered
    large_missing: int = 0  # a large order's S3 object was gone
    large_mismatch: int = 0  # a large order's S3 object held something else than its pointer names
    samples: int = 0  # test events (samples.py): delivered, never marked, never in the ledger
    marked: int = 0
    mark_calls: int = 0
    mark_failures: int = 0
    mark_refused: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class BatchOutcome:
    results: dict[str, RecordResult] = field(default_factory=dict)  # by SQS message id
    summary: ForwardSummary = field(default_factory=ForwardSummary)


@dataclass(frozen=True)
class Attempt:
    """What became of one POST: the target's answer, or why there was none."""

    result: DeliveryResult | None = None  # None: not started or deferred
    reason: str = ""
    deferred: bool = False  # another version of the order holds the delivery lease
    stale: bool = False  # accepted, but a newer version had been delivered first


@dataclass
class OrderWork:
    """The copies of one order's newest version in a batch, and what they need."""

    copies: list[InboundOrder]
    entry: LedgerEntry | None
    send: InboundOrder | None = None  # the copy to POST, if any
    mark: bool = False

    @property
    def head(self) -> InboundOrder:
        return self.send or self.copies[0]


# What the forwarder needs of its collaborators (TargetClient, TraedeClient, ExportLedger,
# QueueWriter), so the unit tier can run it against in-memory fakes.


class Target(Protocol):
    def deliver(self, body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult: ...


class Marker(Protocol):
    def mark_as_exported(self, notes: Sequence[tuple[int, str]]) -> None: ...


class Ledger(Protocol):
    def get_many(self, order_ids: Iterable[int]) -> dict[int, LedgerEntry]: ...
    def begin_deliveries(self, leases: Sequence[tuple[OrderRef, str]], seconds: int) -> list[bool]: ...
    def end_delivery(self, ref: OrderRef, key: str) -> bool: ...
    def record_deliveries(self, deliveries: Sequence[tuple[OrderRef, str]]) -> list[bool]: ...
    def record_rejection(self, ref: OrderRef, reason: str) -> bool: ...
    def begin_marks(
        self, refs: Sequence[OrderRef], at_ms: int, seen: Mapping[int, int] | None = None
    ) -> list[bool]: ...
    def finish_deliveries(
        self,
        deliveries: Sequence[tuple[OrderRef, str]],
        marks: Sequence[OrderRef],
        at_ms: int,
        seen: Mapping[int, int] | None = None,
    ) -> list[bool]: ...
    def undo_marks(self, marks: Sequence[tuple[OrderRef, LedgerEntry | None, int]]) -> list[bool]: ...
    def release(self, ref: OrderRef, run_id: str) -> bool: ...
    def forget_rejection(self, ref: OrderRef) -> bool: ...


DeliveryRecords = GroupCommit[tuple[OrderRef, str], bool]


class Parking(Protocol):
    def send(self, messages: Sequence[OutboundMessage]) -> SendReport: ...


def _answers(write: Callable[[], Sequence[bool]], n: int) -> list[bool | Exception]:
    """A ledger call's answers: True or False per write, or the exception of a write that failed."""
    try:
        return list(write())
    except PartialWrite as exc:  # the writes that took effect stand; the others fail alone
        return [exc.error if ok is None else ok for ok in exc.results]
    except (ClientError, BotoCoreError) as exc:
        return [exc] * n


class BatchWrites:
    """One batch's ledger writes after its POSTs: the delivery records, shared by POSTs answered
    together, and the mark records, which go with the last delivery record.

    A mark record must follow every POST of the batch (`ExportLedger.begin_marks`); the call made
    once the last POST has answered is exactly then, so it carries them all: the batch saves a
    round trip. Without such a call (no POST accepted last), `begin_marks` records them.
    """

    def __init__(self, ledger: Ledger, mark_only: list[OrderRef], seen: dict[int, int]) -> None:
        self._ledger = ledger
        self._seen = seen  # order id -> marked_ms of its version as the batch read it (`ExportLedger.begin_marks`)
        self._to_mark = list(mark_only)  # then each delivery recorded, or whose record failed: it arrived
        self.marks: dict[int, bool | None] = {}  # order id -> its mark record: written, refused, failed (None)
        self.at_ms: dict[int, int] = {}  # order id -> the instant its mark record carries
        self.error = ""
        # One instant for the batch's mark records: a write whose answer was lost may have taken
        # effect, and its second try then carries the same instant, so one take-back covers both.
        self._joint_ms: int | None = None

    def record(self, deliveries: list[tuple[OrderRef, str]]) -> list[bool | Exception]:
        """Delivery records made while other POSTs of the batch are still out."""
        answers = _answers(lambda: self._ledger.record_deliveries(deliveries), len(deliveries))
        self._to_mark += [ref for (ref, _), ok in zip(deliveries, answers, strict=True) if ok is not False]
        return answers

    def record_last(self, deliveries: list[tuple[OrderRef, str]]) -> list[bool | Exception]:
        """The delivery records made once every POST has answered, with the batch's mark records.

        A delivery whose joint write is refused was overtaken: by a newer delivery (its record alone is
        refused too: stale) or a newer mark (its record alone is written; it is not marked).
        """
        at_ms = self._joint_ms = _now_ms()
        n = len(deliveries)
        answers = _answers(
            lambda: self._ledger.finish_deliveries(deliveries, self._to_mark, at_ms, self._seen), n + len(self._to_mark)
        )
        self._note([ref for ref, _ in deliveries] + self._to_mark, answers, at_ms)
        overtaken = [d for d, ok in zip(deliveries, answers[:n], strict=True) if ok is False]
        alone = iter(_answers(lambda: self._ledger.record_deliveries(overtaken), len(overtaken)) if overtaken else [])
        return [next(alone) if ok is False else ok for ok in answers[:n]]

    def begin_marks(self, refs: list[OrderRef]) -> None:
        """Mark records not made with the last delivery record, or whose write there failed (a second try)."""
        at_ms = self._joint_ms or _now_ms()
        answers = _answers(lambda: self._ledger.begin_marks(refs, at_ms, self._seen), len(refs))
        for ref, ok in zip(refs, answers, strict=True):
            self.marks[ref.order_id] = ok if isinstance(ok, bool) else None
            self.at_ms[ref.order_id] = at_ms
            if isinstance(ok, Exception) and not self.error:
                self.error = type(ok).__name__

    def _note(self, refs: list[OrderRef], answers: list[bool | Exception], at_ms: int) -> None:
        for ref, ok in zip(refs, answers, strict=True):
            self.at_ms[ref.order_id] = at_ms  # even a failed write's: it may have taken effect
            if isinstance(ok, bool):  # a failed write is left to `begin_marks`
                self.marks[ref.order_id] = ok


def _ledger_unavailable(exc: Exception) -> Attempt:
    return Attempt(DeliveryResult(Outcome.FAILED, f"ledger unavailable: {type(exc).__name__}"))


def _now_ms() -> int:
    return int(time.time() * 1000)


def partial_batch_response(message_ids: Iterable[str], outcome: BatchOutcome) -> PartialItemFailureResponse:
    """SQS's partial-batch answer: every record not settled ok, including one with no result, comes back.

    Built directly: the forwarder settles the whole batch at once, so Powertools' BatchProcessor
    would only turn per-record exceptions back into this list.
    """
    failed = [m for m in message_ids if not (r := outcome.results.get(m)) or not r.ok]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


class Forwarder:
    def __init__(
        self,
        target: Target,
        traede: Marker,
        ledger: Ledger,
        dlq: Parking,
        system_id: str,
        pool: ThreadPoolExecutor,
    ) -> None:
        self._target = target
        self._traede = traede
        self._ledger = ledger
        self._dlq = dlq
        self._system_id = system_id
        self._pool = pool

    def forward(
        self,
        messages: Sequence[InboundOrder | UnreadableMessage | UnresolvedLargeOrder | MismatchedLargeOrder],
        time_left: Callable[[], float],
    ) -> BatchOutcome:
        """Deliver and mark; `time_left` is the seconds left for starting new work."""
        out = BatchOutcome()
        out.summary.received = len(messages)
        orders = self._deliver_samples(out, [m for m in messages if isinstance(m, InboundOrder)], time_left)
        for bad in (m for m in messages if isinstance(m, UnreadableMessage)):
            out.summary.invalid += 1
            self._park_unreadable(out, bad)
        for unresolved in (m for m in messages if isinstance(m, UnresolvedLargeOrder)):
            self._fail_unresolved(out, unresolved)
        for replaced in (m for m in messages if isinstance(m, MismatchedLargeOrder)):
            self._park_mismatched(out, replaced)

        ledger = self._ledger.get_many(o.ref.order_id for o in orders)
        work = [self._plan(out, copies, ledger.get(copies[0].ref.order_id)) for copies in _by_order(orders)]
        acting = [w for w in work if w is not None]
        sending = [w for w in acting if w.send is not None]
        writes = BatchWrites(
            self._ledger, [w.head.ref for w in acting if w.mark], {w.head.ref.order_id: _seen(w) for w in acting}
        )
        try:
            for w, attempt in zip(sending, self._deliver_all(sending, time_left, writes), strict=True):
                self._after_delivery(out, w, attempt)
        except BaseException:
            # Marks recorded with the last delivery record, and now never made: taken back, so the retry marks.
            # A write whose answer was lost is taken back too (only while the record is this batch's).
            self._undo_marks([w for w in acting if w.head.ref.order_id in writes.at_ms], writes)
            raise
        self._mark(out, [w for w in acting if w.mark], writes, time_left)
        return out

    def _deliver_samples(
        self, out: BatchOutcome, orders: list[InboundOrder], time_left: Callable[[], float]
    ) -> list[InboundOrder]:
        """POST the test events among `orders` (samples.py) and return the other orders.

        A test event goes to the ERP under its own key, each time it is queued, and does nothing
        else: it takes no lease, never reads or writes the ledger, is never marked, and never
        supersedes (or counts as) a version of the real order with its id.
        """
        is_test = [is_sample(o.body) for o in orders]
        samples = [o for o, test in zip(orders, is_test, strict=True) if test]

        def post(sample: InboundOrder) -> DeliveryResult | None:
            if time_left() <= 0:
                return None
            try:
                return self._target.deliver(sample.body, sample_key(sample.key(self._system_id)), sample.reexport_since)
            except ConfigurationError:
                raise
            except Exception as exc:  # the type only, as in `_deliver`
                return DeliveryResult(Outcome.FAILED, f"unexpected error: {type(exc).__name__}")

        for sample, result in zip(samples, self._pool.map(post, samples), strict=True):
            out.summary.samples += 1
            if result is None:
                self._settle(out, [sample], False, NOT_STARTED)
            elif result.accepted:
                self._settle(out, [sample], True, "test event delivered; never marked, not recorded in the ledger")
            elif result.outcome is Outcome.REJECTED:
                self._park(out, [sample], f"test event rejected by the receiving system: {result.reason}")
            else:
                self._settle(out, [sample], False, f"test event delivery failed: {result.reason}")
        return [o for o, test in zip(orders, is_test, strict=True) if not test]

    # -- planning ------------------------------------------------------------------------

    def _plan(self, out: BatchOutcome, copies: list[InboundOrder], entry: LedgerEntry | None) -> OrderWork | None:
        newest = max(c.ref.version for c in copies)
        for old in (c for c in copies if c.ref.version < newest):
            out.summary.superseded += 1
            self._settle(out, [old], True, "superseded by a newer version in the same batch; not delivered")
        current = [c for c in copies if c.ref.version == newest]
        if entry is not None and max(entry.enqueued_version, _delivered(entry)) > newest:
            if _went_backwards(current, entry):
                # Traede lists an older updated_at than one already delivered (a restore, a clock
                # step). Delivering it would overwrite newer content in the ERP: counted, alarmed.
                out.summary.went_backwards += 1
                logger.error(
                    "updated_at went backwards: Traede lists an older version than the ERP has",
                    order_id=copies[0].ref.order_id,
                    version=newest,
                    delivered_version=entry.delivered_version,
                )
            out.summary.superseded += len(current)
            self._settle(out, current, True, "superseded by a newer version; not delivered, not marked")
            return None
        work = OrderWork(current, entry)
        needing = [c for c in current if self._needs_delivery(c, entry)]
        if needing:
            # One POST per version: a scheduled copy (its own key) before any re-export copy.
            work.send = next((c for c in needing if not c.reexport_since), needing[0])
            return work
        if _marked_since_delivery(current, entry):
            out.summary.already_marked += len(current)
            self._settle(out, current, True, "already delivered and marked; nothing to do")
            return None
        out.summary.already_delivered += len(current)
        work.mark = True
        return work

    def _needs_delivery(self, copy: InboundOrder, entry: LedgerEntry | None) -> bool:
        if entry is None or _delivered(entry) < copy.ref.version:
            return True
        if copy.reexport_since is None or entry.delivered_key == copy.key(self._system_id):
            return False
        # A re-export redelivers what was delivered before its instant, and nothing after it.
        return entry.delivered_ms < epoch_ms(copy.reexport_since)

    # -- delivery ------------------------------------------------------------------------

    def _deliver_all(
        self, sending: list[OrderWork], time_left: Callable[[], float], writes: BatchWrites
    ) -> list[Attempt]:
        """Take the batch's delivery leases in one ledger call, then POST what got one, concurrently."""
        if not sending:
            return []
        left = time_left()
        if left <= 0:
            return [Attempt(reason=NOT_STARTED)] * len(sending)
        # The leases taken are used: one order's failed write fails it alone.
        leases = _answers(
            lambda: self._ledger.begin_deliveries(
                [(w.head.ref, w.head.key(self._system_id)) for w in sending], int(left) + LEASE_GRACE_SECONDS
            ),
            len(sending),
        )
        deferred = Attempt(reason="another version of this order is being or was delivered", deferred=True)
        attempts = [_ledger_unavailable(ok) if isinstance(ok, Exception) else deferred for ok in leases]
        leased = [i for i, ok in enumerate(leases) if ok is True]
        records = DeliveryRecords(
            writes.record, expected=len(leased), linger=RECORD_LINGER_SECONDS, last=writes.record_last
        )
        futures = [self._pool.submit(self._deliver, sending[i], time_left, records) for i in leased]
        # Every POST settles before an error is raised: mark records written by the last one are then known.
        wait(futures)
        for i, future in zip(leased, futures, strict=True):
            attempts[i] = future.result()
        return attempts

    def _deliver(self, work: OrderWork, time_left: Callable[[], float], records: DeliveryRecords) -> Attempt:
        """POST one order under the lease this batch took for it, and record the answer at once.

        The delivery is recorded right after its 2xx, not after the batch's last POST: between
        the ERP's acceptance and that record, a crash means the message comes back and the
        version is POSTed again (same Idempotency-Key), so that window is kept to a few
        milliseconds plus the write in flight and its own. The records of POSTs that finish
        together share one call (`GroupCommit`): ten UpdateItems at once cost ten round trips of
        CPU and DynamoDB for no shorter wait (see the README's benchmark).
        """
        order = work.head
        key = order.key(self._system_id)
        result: DeliveryResult | None = None
        try:
            if time_left() <= 0:
                self._ledger.end_delivery(order.ref, key)  # the next try need not wait for the lease
                return Attempt(reason=NOT_STARTED)
            result = self._target.deliver(order.body, key, order.reexport_since)
        except (ClientError, BotoCoreError) as exc:
            return _ledger_unavailable(exc)
        except ConfigurationError:
            raise  # every record would fail alike: fail the invocation, so ForwarderErrorsAlarm fires
        except Exception as exc:  # one odd record never sinks its batch
            # The type only: an exception's text can quote a header value, i.e. a credential.
            logger.error("unexpected error delivering an order", order_id=order.ref.order_id, error=type(exc).__name__)
            result = DeliveryResult(Outcome.FAILED, f"unexpected error: {type(exc).__name__}")
        finally:
            if result is None or not result.accepted:
                records.forgo()  # no record from this one: its batch mates' need not wait for it
        try:
            return self._after_post(order, result, records)
        except (ClientError, BotoCoreError) as exc:
            # It did arrive: go on and mark it. Only a redelivery before the mark could repeat it.
            logger.warning("could not record a delivery in the ledger", order_id=order.ref.order_id, reason=str(exc))
            return Attempt(result)

    def _after_post(self, order: InboundOrder, result: DeliveryResult, records: DeliveryRecords) -> Attempt:
        if result.accepted:
            recorded = records.submit((order.ref, order.key(self._system_id)))
            return Attempt(result, stale=not recorded)
        if result.refuses_version:
            self._ledger.record_rejection(order.ref, result.reason)
        else:
            self._ledger.end_delivery(order.ref, order.key(self._system_id))
        return Attempt(result)

    def _after_delivery(self, out: BatchOutcome, work: OrderWork, attempt: Attempt) -> None:
        s = out.summary
        copies = work.copies
        result = attempt.result
        if attempt.deferred:
            s.deferred += len(copies)
            self._settle(out, copies, False, f"deferred: {attempt.reason}")
        elif result is None:
            s.not_started += len(copies)
            self._settle(out, copies, False, attempt.reason)
        elif attempt.stale:
            # Only possible when a delivery lease expired mid-POST; the ERP may now hold an older
            # version than one already delivered. Counted and alarmed: see the runbook.
            s.stale += len(copies)
            logger.error("an older version landed after a newer one", order_id=work.head.ref.order_id)
            self._settle(out, copies, True, "delivered after a newer version; not marked (StaleDeliveries)")
        elif result.accepted:
            s.delivered += 1
            s.already_delivered += len(copies) - 1
            work.mark = True
        elif result.outcome is Outcome.REJECTED:
            s.rejected += len(copies)
            # No status: the order could not be made into a request (mapping, URL placeholder, header).
            reason = result.reason if result.status is None else f"rejected by the receiving system: {result.reason}"
            self._park(out, copies, reason)
        else:
            s.failed += len(copies)
            self._settle(out, copies, False, f"delivery failed: {result.reason}")

    # -- marking -------------------------------------------------------------------------

    def _mark(
        self, out: BatchOutcome, work: list[OrderWork], writes: BatchWrites, time_left: Callable[[], float]
    ) -> None:
        work = self._recorded_marks(out, work, writes)
        if work and time_left() <= 0:
            # A mark cut off by Lambda's timeout would leave its record: the redelivery would take the
            # order as marked. Taken back instead, so the redelivery marks (without a POST).
            self._undo_marks(work, writes)
            out.summary.not_started += sum(len(w.copies) for w in work)
            for w in work:
                self._settle(out, w.copies, False, f"delivered, not marked: {NOT_STARTED}")
            return
        batches = list(chunk(work, MAX_MARK_BATCH))
        futures = [self._pool.submit(self._mark_batch, batch) for batch in batches]
        wait(futures)
        marked: list[OrderWork] = []
        unmarked: list[OrderWork] = []
        crash: BaseException | None = None
        for batch, future in zip(batches, futures, strict=True):
            if (exc := future.exception()) is not None:  # not a refusal: e.g. Traede's credentials unreadable
                crash = crash or exc
                unmarked += batch
                continue
            calls, errors = future.result()
            out.summary.mark_calls += calls
            for w in batch:
                error = errors[w.head.ref.order_id]
                if error is None:
                    marked.append(w)
                    continue
                unmarked.append(w)
                if error.refused:
                    out.summary.mark_refused += 1
                    self._park(out, w.copies, f"delivered, but Traede refused mark-as-exported: {error}")
                else:
                    out.summary.mark_failures += 1
                    self._settle(out, w.copies, False, f"delivered, but mark-as-exported failed: {error}")
        self._undo_marks(unmarked, writes)
        if crash is not None:
            raise crash  # the invocation fails and its batch comes back; marks not made are no longer recorded
        out.summary.marked += len(marked)
        for w in marked:
            self._settle(out, w.copies, True, "delivered and marked as exported")

    def _recorded_marks(self, out: BatchOutcome, work: list[OrderWork], writes: BatchWrites) -> list[OrderWork]:
        """The orders whose mark is recorded, so may be made (`ExportLedger.begin_marks`): most were
        recorded with the batch's last delivery record, the rest are recorded now. An order whose
        newer version was delivered or marked meanwhile, by another container during this batch's
        POSTs, is not marked on this version's strength: that newer version marks itself."""
        rest = [w for w in work if w.head.ref.order_id not in writes.marks]
        if rest:
            writes.begin_marks([w.head.ref for w in rest])
        keep, unsure = [], []
        for w in work:
            ok = writes.marks[w.head.ref.order_id]
            if ok:
                keep.append(w)
            elif ok is None:
                unsure.append(w)  # the write may have taken effect though its answer was lost
                self._settle(out, w.copies, False, f"delivered, not marked: ledger unavailable ({writes.error})")
            else:
                out.summary.superseded += len(w.copies)
                reason = "a newer version was delivered, or this one marked, meanwhile; not marked on this one"
                self._settle(out, w.copies, True, reason)
        self._undo_marks(unsure, writes)
        return keep

    def _mark_batch(self, batch: list[OrderWork]) -> tuple[int, dict[int, TraedeError | None]]:
        """Mark up to 10; a refusal (4xx) is split in halves until the refused orders are isolated."""
        try:
            # The note shows in Traede's timeline: the key finds the order in the ERP.
            self._traede.mark_as_exported(
                [
                    (w.head.ref.order_id, f"Delivered by traede-export, Idempotency-Key {w.head.key(self._system_id)}")
                    for w in batch
                ]
            )
        except TraedeError as exc:
            if not exc.refused or len(batch) == 1:
                return 1, {w.head.ref.order_id: exc for w in batch}
            half = len(batch) // 2
            calls, errors = 1, dict[int, TraedeError | None]()
            for part in (batch[:half], batch[half:]):
                part_calls, part_errors = self._mark_batch(part)
                calls += part_calls
                errors.update(part_errors)
            return calls, errors
        return 1, {w.head.ref.order_id: None for w in batch}

    def _undo_marks(self, unmarked: list[OrderWork], writes: BatchWrites) -> None:
        """Take back the records of marks that failed, so the retry marks. If that fails too, the
        retry sees the version as marked and stops; the order, still pending in Traede, is then
        fetched by the first poll after its in-flight lease, and that copy marks it."""
        if not unmarked:
            return
        try:
            self._ledger.undo_marks([(w.head.ref, w.entry, writes.at_ms[w.head.ref.order_id]) for w in unmarked])
        except (ClientError, BotoCoreError, PartialWrite) as exc:
            orders = [w.head.ref.order_id for w in unmarked]
            logger.warning("could not take back the record of a failed mark", order_ids=orders, reason=str(exc))

    # -- settling ------------------------------------------------------------------------

    def _park(self, out: BatchOutcome, copies: list[InboundOrder], reason: str) -> None:
        """A permanent failure goes straight to the DLQ, with every attribute it came with."""
        self._park_messages(out, [(c.message_id, c.message_body, c.attributes) for c in copies], reason)
        for c in copies:
            self._log(c.message_id, c.ref.order_id, c.ref.version, c.receive_count, out.results[c.message_id])

    def _fail_unresolved(self, out: BatchOutcome, m: UnresolvedLargeOrder) -> None:
        """The record fails alone and comes back. A missing object's lease is given back and a
        refusal of its version forgotten, so the next poll uploads the order again."""
        out.results[m.message_id] = RecordResult(False, m.reason)
        order_id = m.ref.order_id if m.ref else None
        logger.error(m.reason, order_id=order_id, message_id=m.message_id, outcome="failed", reason=m.reason)
        if not m.missing:
            return
        out.summary.large_missing += 1
        if m.ref is not None and m.run_id is not None:
            try:
                self._ledger.release(m.ref, m.run_id)
                self._ledger.forget_rejection(m.ref)  # a redriven refusal: the poll must bring it back
            except (ClientError, BotoCoreError) as exc:  # the lease then runs out by itself
                logger.warning("could not release the lease", order_id=order_id, reason=str(exc))

    def _park_mismatched(self, out: BatchOutcome, m: MismatchedLargeOrder) -> None:
        """A large order's object that does not hold what its pointer names (replaced in the bucket) is
        never delivered: parked with the reason, counted (LargeOrderMismatch, alarmed). The lease is
        given back and a refusal forgotten, so the next poll uploads the order's real body again."""
        out.summary.large_mismatch += 1
        self._park_messages(out, [(m.message_id, m.body, m.attributes)], m.reason)
        order_id = m.ref.order_id if m.ref else None
        logger.error(m.reason, order_id=order_id, message_id=m.message_id, outcome="parked", reason=m.reason)
        if m.ref is not None and m.run_id is not None:
            try:
                self._ledger.release(m.ref, m.run_id)
                self._ledger.forget_rejection(m.ref)
            except (ClientError, BotoCoreError) as exc:  # the lease then runs out by itself
                logger.warning("could not release the lease", order_id=order_id, reason=str(exc))

    def _park_unreadable(self, out: BatchOutcome, bad: UnreadableMessage) -> None:
        self._park_messages(out, [(bad.message_id, bad.body, bad.attributes)], f"not a production order: {bad.reason}")
        self._log(bad.message_id, None, None, bad.receive_count, out.results[bad.message_id])

    def _park_messages(self, out: BatchOutcome, messages: list[tuple[str, str, SqsAttributes]], reason: str) -> None:
        reason = _sqs_text(reason[:MAX_REASON_CHARS])
        outbound = [
            OutboundMessage(str(i), body, {**attrs, **string_attributes({Attr.FAILURE_REASON: reason})})
            for i, (_, body, attrs) in enumerate(messages)
        ]
        report = self._dlq.send(outbound)
        for i, (message_id, _, _) in enumerate(messages):
            if str(i) in report.failed:
                out.results[message_id] = RecordResult(False, f"{reason}; could not be moved to the DLQ")
            else:
                out.results[message_id] = RecordResult(True, f"{reason}; moved to the DLQ")

    def _settle(self, out: BatchOutcome, copies: list[InboundOrder], ok: bool, reason: str) -> None:
        for c in copies:
            out.results[c.message_id] = RecordResult(ok, reason)
            self._log(c.message_id, c.ref.order_id, c.ref.version, c.receive_count, out.results[c.message_id])

    @staticmethod
    def _log(message_id: str, order_id: int | None, version: str | None, attempt: int, result: RecordResult) -> None:
        log: Any = logger.info if result.ok else logger.warning
        log(
            result.reason,
            order_id=order_id,
            version=version,
            attempt=attempt,
            message_id=message_id,
            outcome="ok" if result.ok else "failed",
            reason=result.reason,
        )


def _sqs_text(text: str) -> str:
    """`text` with "?" for each character SQS refuses in an attribute (a reason may quote an ERP's or
    Traede's error body: binary, ANSI colours, NUL), so the parking itself cannot fail on it."""
    return "".join(
        c if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000" else "?"
        for c in text
    )


def _by_order(orders: Sequence[InboundOrder]) -> list[list[InboundOrder]]:
    groups: dict[int, list[InboundOrder]] = {}
    for o in orders:
        groups.setdefault(o.ref.order_id, []).append(o)
    return list(groups.values())


def _delivered(entry: LedgerEntry) -> str:
    """The newest version known to have reached the ERP: a mark follows a 2xx, even one whose
    record in the ledger failed (e.g. it met another writer's transaction on the item)."""
    return max(entry.delivered_version, entry.marked_version)


def _seen(work: OrderWork) -> int:
    """When the batch read the ledger, the instant this version was marked; 0 if it was not."""
    entry = work.entry
    return entry.marked_ms if entry is not None and entry.marked_version == work.head.ref.version else 0


def _went_backwards(copies: list[InboundOrder], entry: LedgerEntry) -> bool:
    """The poll that last claimed the order fetched this version, older than the one delivered."""
    runs = {c.attributes.get(Attr.RUN_ID, {}).get("StringValue") for c in copies}
    version = copies[0].ref.version
    return entry.run_id in runs and entry.enqueued_version == version and entry.delivered_version > version


def _marked_since_delivery(copies: list[InboundOrder], entry: LedgerEntry | None) -> bool:
    """The version was marked after its last delivery and after any poll that fetched it since."""
    if entry is None or entry.marked_version != copies[0].ref.version:
        return False
    # A copy from the poll run that last fetched this version, after its mark: Traede still
    # lists it as pending, so it is marked again.
    runs = {c.attributes.get(Attr.RUN_ID, {}).get("StringValue") for c in copies}
    fetched = entry.enqueued_ms if entry.run_id in runs else 0
    return entry.marked_ms >= max(entry.delivered_ms, fetched)
