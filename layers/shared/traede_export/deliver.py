"""A forwarder batch's deliveries: the leases in one ledger call, the POSTs at once, each 2xx recorded.

The delivery is recorded right after its 2xx, not after the batch's last POST: between the ERP's
acceptance and that record, a crash means the message comes back and the version is POSTed
again (same Idempotency-Key), so that window is kept to a few milliseconds plus the write in
flight and its own. Records of POSTs that finish together share one call (`GroupCommit`), and
the call made once the last POST has answered also carries the batch's mark records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, wait
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.errors import ConfigurationError, PartialWrite
from traede_export.group_commit import GroupCommit
from traede_export.ledger import Delivery
from traede_export.models import InboundOrder, OrderRef, epoch_ms
from traede_export.ports import ForwarderLedger, Target
from traede_export.protocol import OrderPlan
from traede_export.samples import sample_key
from traede_export.target import DeliveryResult, Outcome

logger = Logger(child=True)
LEASE_GRACE_SECONDS = 30  # the delivery lease outlives the invocation by this much
NOT_STARTED = "not started: the invocation is close to its timeout"
# How long a delivery's record waits for its batch mates' (answered within milliseconds of each
# other, they share one ledger call); it adds at most this to the window for a duplicate POST.
RECORD_LINGER_SECONDS = 0.01

Answer = bool | Exception  # one write's answer: its condition held or not, or why there is none


def answers(write: Callable[[], Sequence[bool]], n: int) -> list[Answer]:
    """A ledger call's answers: True or False per write, or the exception of a write that failed."""
    try:
        return list(write())
    except PartialWrite as exc:  # the writes that took effect stand; the others fail alone
        return [exc.error if ok is None else ok for ok in exc.results]
    except (ClientError, BotoCoreError) as exc:
        return [exc] * n


@dataclass(frozen=True)
class Attempt:
    """What became of one POST: the target's answer, or why there was none."""

    result: DeliveryResult | None = None  # None: not started or deferred
    reason: str = ""
    deferred: bool = False  # another delivery of the order holds its lease
    stale: bool = False  # accepted, but a newer version had been delivered first


def ledger_unavailable(exc: Exception) -> Attempt:
    return Attempt(DeliveryResult(Outcome.FAILED, f"ledger unavailable: {type(exc).__name__}"))


class BatchWrites:
    """One batch's ledger writes after its POSTs: the delivery records, shared by POSTs answered
    together, and the mark records, which go with the last delivery record.

    A mark record must follow every POST of the batch; the call made once the last POST has
    answered is exactly then, so it carries them all. Without such a call (no POST accepted last),
    `record_marks` writes them. Every mark record carries the batch's token, so a second try finds
    its own record and the take-back removes only this batch's.
    """

    def __init__(self, ledger: ForwarderLedger, token: str, mark_only: list[OrderRef], seen: dict[int, str]) -> None:
        self._ledger = ledger
        self.token = token
        self._seen = seen  # order id -> its version's mark token as the batch read it
        self._to_mark = list(mark_only)  # then each delivery recorded, or whose record failed: it arrived
        self.marks: dict[int, bool | None] = {}  # order id -> its mark record: written, refused, failed (None)
        self.tried: set[int] = set()  # orders whose mark record was sent, answered or not
        self.sent: set[int] = set()  # orders whose POST went out: their leases stay until they run out
        self.stranded = 0  # mark records whose mark failed and whose take-back failed too
        self.error = ""

    def record(self, deliveries: list[Delivery]) -> list[Answer]:
        """Delivery records made while other POSTs of the batch are still out."""
        found = answers(lambda: self._ledger.record_deliveries(deliveries, self.token), len(deliveries))
        self._to_mark += [d.ref for d, ok in zip(deliveries, found, strict=True) if ok is not False]
        return found

    def record_last(self, deliveries: list[Delivery]) -> list[Answer]:
        """The delivery records made once every POST has answered, with the batch's mark records.

        A delivery whose joint write is refused was overtaken: by a newer delivery (its record alone is
        refused too: stale) or a newer claim or mark (its record alone is written; it is not marked).
        """
        n = len(deliveries)
        refs = [d.ref for d in deliveries] + self._to_mark
        found = answers(
            lambda: self._ledger.finish_deliveries(deliveries, self._to_mark, self.token, self._seen), len(refs)
        )
        self._note(refs, found, final=False)
        overtaken = [d for d, ok in zip(deliveries, found[:n], strict=True) if ok is False]
        alone = iter(
            answers(lambda: self._ledger.record_deliveries(overtaken, self.token), len(overtaken)) if overtaken else []
        )
        return [next(alone) if ok is False else ok for ok in found[:n]]

    def record_marks(self, refs: list[OrderRef]) -> None:
        """Mark records not made with the last delivery record, or whose write there failed (a second try)."""
        found = answers(lambda: self._ledger.record_marks(refs, self.token, self._seen), len(refs))
        self._note(refs, found, final=True)

    def _note(self, refs: list[OrderRef], found: list[Answer], final: bool) -> None:
        """A failed write of the joint call is left out of `marks`: `record_marks` tries it again."""
        for ref, ok in zip(refs, found, strict=True):
            self.tried.add(ref.order_id)  # even a failed write's: it may have taken effect
            if isinstance(ok, bool) or final:
                self.marks[ref.order_id] = ok if isinstance(ok, bool) else None
            if isinstance(ok, Exception) and final and not self.error:
                self.error = type(ok).__name__


DeliveryRecords = GroupCommit[Delivery, bool]


def _since_ms(order: InboundOrder) -> int:
    """A re-export copy's instant in epoch ms (a version delivered after it rides on that delivery), else 0."""
    return epoch_ms(order.reexport_since) if order.reexport_since else 0


class Deliveries:
    """POSTs a batch's orders under the delivery leases that the batch takes with its token."""

    def __init__(
        self,
        target: Target,
        ledger: ForwarderLedger,
        system_id: str,
        pool: Executor,
        margin: float = 10.0,
        hold: float | None = None,
    ) -> None:
        self._target = target
        self._ledger = ledger
        self._system_id = system_id
        self._pool = pool
        self._hold = hold  # how long a failed POST keeps its lease; None: until it runs out
        # A POST may run into the invocation's safety margin (http.arm_deadline): the lease covers it.
        self._lease_margin = int(margin) + LEASE_GRACE_SECONDS

    def run(self, sending: list[OrderPlan], time_left: Callable[[], float], writes: BatchWrites) -> list[Attempt]:
        """Take the batch's delivery leases in one ledger call, then POST what got one, concurrently."""
        if not sending:
            return []
        left = time_left()
        if left <= 0:
            return [Attempt(reason=NOT_STARTED)] * len(sending)
        # The leases taken are used: one order's failed write fails it alone.
        leases = answers(
            lambda: self._ledger.begin_deliveries(
                [(p.head.ref, p.head.key(self._system_id), _since_ms(p.head)) for p in sending],
                int(left) + self._lease_margin,
                writes.token,
            ),
            len(sending),
        )
        deferred = Attempt(reason="another delivery of this order holds its lease", deferred=True)
        attempts = [ledger_unavailable(ok) if isinstance(ok, Exception) else deferred for ok in leases]
        leased = [i for i, ok in enumerate(leases) if ok is True]
        records = DeliveryRecords(
            writes.record, expected=len(leased), linger=RECORD_LINGER_SECONDS, last=writes.record_last
        )
        futures = [self._pool.submit(self._deliver, sending[i].head, time_left, records, writes) for i in leased]
        # Every POST settles before an error is raised: mark records written by the last one are then known.
        wait(futures)
        for i, future in zip(leased, futures, strict=True):
            attempts[i] = future.result()
        return attempts

    def give_back(self, sending: list[OrderPlan], writes: BatchWrites) -> None:
        """The invocation fails once every POST has ended: the leases of orders never POSTed go back
        at once, so the retry need not wait for them to run out (a killed Lambda's do). A POST that
        went out keeps its lease: the ERP may still be working on it."""
        unsent = [p.head.ref for p in sending if p.head.ref.order_id not in writes.sent]
        sent = [p.head.ref for p in sending if p.head.ref.order_id in writes.sent]
        try:
            if unsent:
                self._ledger.end_deliveries(unsent, writes.token)
            if sent and self._hold is not None:
                self._ledger.shorten_deliveries(sent, writes.token, self._hold)
        except (ClientError, BotoCoreError, PartialWrite) as exc:
            logger.warning("could not give back the delivery leases", reason=type(exc).__name__)

    def test_events(self, samples: list[InboundOrder], time_left: Callable[[], float]) -> list[DeliveryResult | None]:
        """POST test events (samples.py) under their own key, concurrently; None for one not started.

        A test event takes no lease and writes nothing: it never touches the real order's versions.
        """

        def post(sample: InboundOrder) -> DeliveryResult | None:
            if time_left() <= 0:
                return None
            try:
                return self._target.deliver(sample.body, sample_key(sample.key(self._system_id)), sample.reexport_since)
            except ConfigurationError:
                raise
            except Exception as exc:  # the type only, as in `_deliver`
                return DeliveryResult(Outcome.FAILED, f"unexpected error: {type(exc).__name__}")

        return list(self._pool.map(post, samples))

    def _deliver(
        self, order: InboundOrder, time_left: Callable[[], float], records: DeliveryRecords, writes: BatchWrites
    ) -> Attempt:
        """POST one order under the lease this batch took for it, and record the answer at once."""
        key = order.key(self._system_id)
        result: DeliveryResult | None = None
        try:
            if time_left() <= 0:
                self._ledger.end_delivery(order.ref, writes.token)  # the next try need not wait for the lease
                return Attempt(reason=NOT_STARTED)
            try:
                result = self._target.deliver(order.body, key, order.reexport_since)
            finally:
                writes.sent.add(order.ref.order_id)
        except (ClientError, BotoCoreError) as exc:
            return ledger_unavailable(exc)
        except ConfigurationError:
            writes.sent.discard(order.ref.order_id)  # it could not be sent: its lease may go back
            raise  # every record would fail alike: fail the invocation, so ForwarderErrorsAlarm fires
        except Exception as exc:  # one odd record never sinks its batch
            # The type only: an exception's text can quote a header value, i.e. a credential.
            logger.error("unexpected error delivering an order", order_id=order.ref.order_id, error=type(exc).__name__)
            result = DeliveryResult(Outcome.FAILED, f"unexpected error: {type(exc).__name__}")
        finally:
            if result is None or not result.accepted:
                records.forgo()  # no record from this one: its batch mates' need not wait for it
        try:
            return self._after_post(order, result, records, writes.token)
        except (ClientError, BotoCoreError) as exc:
            # It did arrive: go on and mark it. Only a redelivery before the mark could repeat it.
            logger.warning("could not record a delivery in the ledger", order_id=order.ref.order_id, reason=str(exc))
            return Attempt(result)

    def _after_post(self, order: InboundOrder, result: DeliveryResult, records: DeliveryRecords, token: str) -> Attempt:
        if result.accepted:
            # A record refused by the ledger's guard means a newer version was delivered first.
            recorded = records.submit(Delivery(order.ref, order.key(self._system_id), result.reference or ""))
            return Attempt(result, stale=not recorded)
        if result.refuses_version:
            self._ledger.record_rejection(order.ref, result.reason, token)
        elif result.outcome is Outcome.REJECTED:
            self._ledger.end_delivery(order.ref, token)  # answered: the ERP is not working on it
        elif self._hold is not None:
            self._ledger.shorten_deliveries([order.ref], token, self._hold)
        # Otherwise a POST that failed keeps its lease until it runs out (well before the message's
        # retry): without an answer, or with a 5xx or 409, the ERP may still store it, and neither
        # another copy nor a newer version may overtake it meanwhile.
        return Attempt(result)
