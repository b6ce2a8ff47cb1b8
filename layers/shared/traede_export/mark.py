"""A forwarder batch's marks: recorded in the ledger first, then made in calls of at most 10.

A mark is recorded before it is made, after every POST of the batch, on condition that no newer
version was claimed, delivered or marked meanwhile (`protocol.RECORD_MARK`). A mark that fails,
is refused, or is never made has its record taken back, so the retry marks. If the take-back fails
too (or the Lambda dies in between), the retry sees the version as marked and stops; the order,
still pending in Traede, is fetched by the first poll after its in-flight lease, and that copy
marks it: late, never lost, never POSTed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, wait
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.deliver import NOT_STARTED, BatchWrites
from traede_export.errors import PartialWrite, TraedeError
from traede_export.models import MAX_MARK_BATCH, InboundOrder, chunk
from traede_export.ports import ForwarderLedger, Marker
from traede_export.protocol import LedgerEntry, OrderPlan
from traede_export.settle import Settler

logger = Logger(child=True)


@dataclass
class OrderWork:
    """One order of a batch that acts: its plan, its entry as the batch read it, whether to mark."""

    plan: OrderPlan
    entry: LedgerEntry | None
    mark: bool = False
    posted: bool = False  # this batch's POST was accepted (else the mark rides on a delivery the ledger knows)
    reference: str | None = None  # the ERP's reference from this batch's answer

    @property
    def head(self) -> InboundOrder:
        return self.plan.head

    @property
    def copies(self) -> list[InboundOrder]:
        return self.plan.current


class Marking:
    def __init__(self, traede: Marker, ledger: ForwarderLedger, system_id: str, pool: Executor) -> None:
        self._traede = traede
        self._ledger = ledger
        self._system_id = system_id
        self._pool = pool

    def run(self, s: Settler, work: list[OrderWork], writes: BatchWrites, time_left: Callable[[], float]) -> None:
        work = self._recorded(s, work, writes)
        if work and time_left() <= 0:
            # A mark cut off by Lambda's timeout would leave its record: the redelivery would take the
            # order as marked. Taken back instead, so the redelivery marks (without a POST).
            self.undo(work, writes)
            s.summary.not_started += sum(len(w.copies) for w in work)
            for w in work:
                s.settle(w.copies, False, f"delivered, not marked: {NOT_STARTED}")
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
            s.summary.mark_calls += calls
            for w in batch:
                error = errors[w.head.ref.order_id]
                if error is None:
                    marked.append(w)
                    continue
                unmarked.append(w)
                if error.refused:
                    s.summary.mark_refused += 1
                    s.park(w.copies, f"delivered, but Traede refused mark-as-exported: {error}")
                else:
                    s.summary.mark_failures += 1
                    s.settle(w.copies, False, f"delivered, but mark-as-exported failed: {error}")
        self.undo(unmarked, writes)
        if crash is not None:
            raise crash  # the invocation fails and its batch comes back; marks not made are no longer recorded
        s.summary.marked += len(marked)
        for w in marked:
            s.settle(w.copies, True, "delivered and marked as exported")

    def _recorded(self, s: Settler, work: list[OrderWork], writes: BatchWrites) -> list[OrderWork]:
        """The orders whose mark is recorded, so may be made: most were recorded with the batch's last
        delivery record, the rest are recorded now. An order whose newer version was claimed,
        delivered or marked meanwhile (by another container, during this batch's POSTs) is not
        marked on this version's strength: that newer version marks itself."""
        rest = [w for w in work if w.head.ref.order_id not in writes.marks]
        if rest:
            writes.record_marks([w.head.ref for w in rest])
        keep, unsure = [], []
        for w in work:
            ok = writes.marks[w.head.ref.order_id]
            if ok:
                keep.append(w)
            elif ok is None:
                unsure.append(w)  # the write may have taken effect though its answer was lost
                s.settle(w.copies, False, f"delivered, not marked: ledger unavailable ({writes.error})")
            else:
                s.summary.superseded += len(w.copies)
                reason = "a newer version was claimed, delivered or marked, or this one marked, meanwhile; not marked"
                s.settle(w.copies, True, reason)
        self.undo(unsure, writes)
        return keep

    def _mark_batch(self, batch: list[OrderWork]) -> tuple[int, dict[int, TraedeError | None]]:
        """Mark up to 10; a refusal (4xx) is split in halves until the refused orders are isolated."""
        try:
            self._traede.mark_as_exported([(w.head.ref.order_id, self.note(w)) for w in batch])
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

    def note(self, w: OrderWork) -> str:
        """The note in Traede's timeline: the ERP's reference, and the key that finds the order in the ERP.

        A mark that rides on an earlier delivery (a retry after a failed mark, a redelivery, another
        invocation's copy) names that delivery, as the ledger recorded it: its key and its reference.
        """
        key, reference = w.head.key(self._system_id), w.reference
        e = w.entry
        if not w.posted and e is not None and e.delivered_version == w.head.ref.version and e.delivered_key:
            key, reference = e.delivered_key, e.delivered_reference or None
        if reference:
            return f"ERP reference {reference} \u00b7 Idempotency-Key {key}"
        return f"Delivered by traede-export, Idempotency-Key {key}"

    def undo(self, unmarked: list[OrderWork], writes: BatchWrites) -> None:
        """Take back the records of marks that were not made, so the retry marks; only this batch's."""
        unmarked = [w for w in unmarked if w.head.ref.order_id in writes.tried]
        if not unmarked:
            return
        try:
            self._ledger.undo_marks([(w.head.ref, w.entry) for w in unmarked], writes.token)
        except (ClientError, BotoCoreError, PartialWrite) as exc:
            # The retry will read these as marked and stop; Traede still lists them, so the first
            # poll after their in-flight lease brings them back. Counted (MarkRecordsStranded, alarmed).
            orders = [w.head.ref.order_id for w in unmarked]
            stranded = len(orders) if not isinstance(exc, PartialWrite) else exc.results.count(None)
            writes.stranded += stranded
            logger.error("could not take back the record of a failed mark", order_ids=orders, reason=str(exc))
