"""The forwarder's logic: plan each order, deliver the batch concurrently, then mark what arrived.

The rules live in `protocol` (the plan, and the guards of every ledger write); here they are
carried out: `deliver` takes the leases and POSTs, `mark` records and makes the marks, `settle`
ends each SQS record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from traede_export import protocol
from traede_export.deliver import NOT_STARTED, Attempt, BatchWrites, Deliveries
from traede_export.events import MismatchedLargeOrder, UnresolvedLargeOrder
from traede_export.ledger import new_token
from traede_export.mark import Marking, OrderWork
from traede_export.models import InboundOrder, OrderRef, UnreadableMessage
from traede_export.ports import ForwarderLedger, Marker, Queue, Target
from traede_export.protocol import Step
from traede_export.samples import is_sample
from traede_export.settle import BatchOutcome, ForwardSummary, RecordResult, Settler, partial_batch_response
from traede_export.target import Outcome

__all__ = ["BatchOutcome", "ForwardSummary", "Forwarder", "RecordResult", "partial_batch_response"]

logger = Logger(child=True)

# What the plan's steps that end an order at once mean for its records: (counter, reason).
_SETTLED_AT_ONCE = {
    Step.SUPERSEDED: ("superseded", "superseded by a newer version; not delivered, not marked"),
    Step.WENT_BACKWARDS: ("superseded", "superseded by a newer version; not delivered, not marked"),
    Step.ALREADY_MARKED: ("already_marked", "already delivered and marked; nothing to do"),
}


class Forwarder:
    def __init__(
        self,
        target: Target,
        traede: Marker,
        ledger: ForwarderLedger,
        dlq: Queue,
        system_id: str,
        pool: Executor,
        margin: float = 10.0,  # the invocation's safety margin (TIME_SAFETY_MARGIN_SECONDS)
        hold: float | None = None,  # how long a failed POST keeps its lease (None: until it runs out)
    ) -> None:
        self._ledger = ledger
        self._dlq = dlq
        self._system_id = system_id
        self._deliveries = Deliveries(target, ledger, system_id, pool, margin, hold)
        self._marking = Marking(traede, ledger, system_id, pool)

    def forward(
        self,
        messages: Sequence[InboundOrder | UnreadableMessage | UnresolvedLargeOrder | MismatchedLargeOrder],
        time_left: Callable[[], float],
        out: BatchOutcome | None = None,
    ) -> BatchOutcome:
        """Deliver and mark; `time_left` is the seconds left for starting new work. Results and
        counts go into `out`, which a caller passes to read them also when this raises."""
        s = Settler(out if out is not None else BatchOutcome(), self._dlq)
        s.summary.received = len(messages)
        inbound = [m for m in messages if isinstance(m, InboundOrder)]
        orders = [o for o in inbound if not is_sample(o.body)]
        self._test_events(s, [o for o in inbound if is_sample(o.body)], time_left)
        for bad in (m for m in messages if isinstance(m, UnreadableMessage)):
            s.summary.invalid += 1
            s.park_messages([(bad.message_id, bad.body, bad.attributes)], f"not a production order: {bad.reason}")
            s.log(bad.message_id, None, None, bad.receive_count)
        for unresolved in (m for m in messages if isinstance(m, UnresolvedLargeOrder)):
            self._fail_unresolved(s, unresolved)
        for replaced in (m for m in messages if isinstance(m, MismatchedLargeOrder)):
            self._park_mismatched(s, replaced)

        entries = self._ledger.get_many(o.ref.order_id for o in orders)
        acting: list[OrderWork] = []
        for copies in _by_order(orders):
            entry = entries.get(copies[0].ref.order_id)
            work = self._act_on(s, protocol.plan(copies, entry, self._system_id), entry)
            if work is not None:
                acting.append(work)
        sending = [w for w in acting if w.plan.step is Step.DELIVER]
        writes = BatchWrites(
            self._ledger,
            new_token(),
            [w.head.ref for w in acting if w.mark],
            {w.head.ref.order_id: w.entry.mark_token_of(w.head.ref.version) if w.entry else "" for w in acting},
        )
        try:
            try:
                attempts = self._deliveries.run([w.plan for w in sending], time_left, writes)
                for w, attempt in zip(sending, attempts, strict=True):
                    self._after_delivery(s, w, attempt)
            except BaseException:
                # Marks recorded with the last delivery record, and now never made: taken back, so the
                # retry marks; and the batch's leases, whose POSTs have all ended, go back with them.
                self._marking.undo(acting, writes)
                self._deliveries.give_back([w.plan for w in sending], writes)
                raise
            self._marking.run(s, [w for w in acting if w.mark], writes, time_left)
        finally:
            s.summary.stranded_marks += writes.stranded  # counted also when the invocation fails
        return s.out

    def _test_events(self, s: Settler, samples: list[InboundOrder], time_left: Callable[[], float]) -> None:
        """A test event goes to the ERP under its own key, each time it is queued, and does nothing
        else: no lease, no ledger read or write, no mark, never a version of the real order."""
        for sample, result in zip(samples, self._deliveries.test_events(samples, time_left), strict=True):
            s.summary.samples += 1
            if result is None:
                s.settle([sample], False, NOT_STARTED)
            elif result.accepted:
                s.settle([sample], True, "test event delivered; never marked, not recorded in the ledger")
            elif result.outcome is Outcome.REJECTED:
                s.park([sample], f"test event rejected by the receiving system: {result.reason}")
            else:
                s.settle([sample], False, f"test event delivery failed: {result.reason}")

    def _act_on(self, s: Settler, plan: protocol.OrderPlan, entry: protocol.LedgerEntry | None) -> OrderWork | None:
        """Settle what the plan ends at once; the rest acts (delivers, marks, or both)."""
        if plan.older:
            s.summary.superseded += len(plan.older)
            s.settle(plan.older, True, "superseded by a newer version in the same batch; not delivered")
        if plan.step is Step.WENT_BACKWARDS:
            # Traede lists an older updated_at than one already delivered (a restore, a clock step).
            # Delivering it would overwrite newer content in the ERP: counted, alarmed.
            s.summary.went_backwards += 1
            logger.error(
                "updated_at went backwards: Traede lists an older version than the ERP has",
                order_id=plan.head.ref.order_id,
                version=plan.head.ref.version,
                delivered_version=entry.delivered_version if entry else "",
            )
        if plan.step in _SETTLED_AT_ONCE:
            counter, reason = _SETTLED_AT_ONCE[plan.step]
            setattr(s.summary, counter, getattr(s.summary, counter) + len(plan.current))
            s.settle(plan.current, True, reason)
            return None
        if plan.step is Step.MARK:
            s.summary.already_delivered += len(plan.current)
        return OrderWork(plan, entry, mark=plan.step is Step.MARK)

    def _after_delivery(self, s: Settler, work: OrderWork, attempt: Attempt) -> None:
        copies = work.copies
        result = attempt.result
        if result is not None and result.reference_problem:
            # Accepted all the same: the note falls back to the key alone (ReferenceMissing).
            s.summary.reference_missing += 1
            logger.warning(
                "no ERP reference in the answer", order_id=work.head.ref.order_id, reason=result.reference_problem
            )
        if attempt.deferred:
            s.summary.deferred += len(copies)
            s.settle(copies, False, f"deferred: {attempt.reason}")
        elif result is None:
            s.summary.not_started += len(copies)
            s.settle(copies, False, attempt.reason)
        elif attempt.stale:
            # Only possible when a delivery lease expired mid-POST; the ERP may now hold an older
            # version than one already delivered. Counted and alarmed: see the runbook.
            s.summary.stale += len(copies)
            logger.error("an older version landed after a newer one", order_id=work.head.ref.order_id)
            s.settle(copies, True, "delivered after a newer version; not marked (StaleDeliveries)")
        elif result.accepted:
            s.summary.delivered += 1
            s.summary.already_delivered += len(copies) - 1
            work.mark = work.posted = True
            work.reference = result.reference
        elif result.outcome is Outcome.REJECTED:
            s.summary.rejected += len(copies)
            # No status: the order could not be made into a request (mapping, URL placeholder, header).
            reason = result.reason if result.status is None else f"rejected by the receiving system: {result.reason}"
            s.park(copies, reason)
        else:
            s.summary.failed += len(copies)
            s.settle(copies, False, f"delivery failed: {result.reason}")

    def _fail_unresolved(self, s: Settler, m: UnresolvedLargeOrder) -> None:
        """The record fails alone and comes back. A missing object's lease is given back and a
        refusal of its version forgotten, so the next poll uploads the order again."""
        s.out.results[m.message_id] = RecordResult(False, m.reason)
        order_id = m.ref.order_id if m.ref else None
        logger.error(m.reason, order_id=order_id, message_id=m.message_id, outcome="failed", reason=m.reason)
        if m.missing:
            s.summary.large_missing += 1
            self._upload_again(m.ref, m.run_id)

    def _park_mismatched(self, s: Settler, m: MismatchedLargeOrder) -> None:
        """A large order's object that does not hold what its pointer names (replaced in the bucket) is
        never delivered: parked with the reason, counted (LargeOrderMismatch, alarmed), and the next
        poll uploads the order's real body again."""
        s.summary.large_mismatch += 1
        s.park_messages([(m.message_id, m.body, m.attributes)], m.reason)
        order_id = m.ref.order_id if m.ref else None
        logger.error(m.reason, order_id=order_id, message_id=m.message_id, outcome="parked", reason=m.reason)
        self._upload_again(m.ref, m.run_id)

    def _upload_again(self, ref: OrderRef | None, run_id: str | None) -> None:
        """Give the poll's lease back and forget a refusal (a redriven one), so the next poll brings it."""
        if ref is None or run_id is None:
            return
        try:
            self._ledger.release(ref, run_id)
            self._ledger.forget_rejection(ref)
        except (ClientError, BotoCoreError) as exc:  # the lease then runs out by itself
            logger.warning("could not release the lease", order_id=ref.order_id, reason=str(exc))


def _by_order(orders: Sequence[InboundOrder]) -> list[list[InboundOrder]]:
    groups: dict[int, list[InboundOrder]] = {}
    for o in orders:
        groups.setdefault(o.ref.order_id, []).append(o)
    return list(groups.values())
