"""The forwarder's logic: deliver a batch concurrently, then mark what arrived, 10 at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.events import inbound_order
from traede_export.ledger import ExportLedger, LedgerEntry
from traede_export.models import MAX_MARK_BATCH, Attr, InboundOrder, InvalidOrder, OrderRef, chunk, string_attributes
from traede_export.queue import OutboundMessage, QueueWriter
from traede_export.target import DeliveryResult, Outcome, TargetClient
from traede_export.traede import TraedeClient, TraedeError

logger = Logger(child=True)


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
    superseded: int = 0
    rejected: int = 0
    failed: int = 0
    not_started: int = 0
    marked: int = 0
    mark_calls: int = 0
    mark_failures: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class BatchOutcome:
    results: dict[str, RecordResult] = field(default_factory=dict)  # by SQS message id
    summary: ForwardSummary = field(default_factory=ForwardSummary)


class Forwarder:
    def __init__(
        self,
        target: TargetClient,
        traede: TraedeClient,
        ledger: ExportLedger,
        dlq: QueueWriter,
        system_id: str,
        pool: ThreadPoolExecutor,
    ) -> None:
        self._target = target
        self._traede = traede
        self._ledger = ledger
        self._dlq = dlq
        self._system_id = system_id
        self._pool = pool

    def forward(self, records: Sequence[SQSRecord], time_left: Callable[[], float]) -> BatchOutcome:
        """Deliver and mark; `time_left` is the seconds left for starting new work."""
        out = BatchOutcome()
        out.summary.received = len(records)
        orders = []
        for record in records:
            try:
                orders.append(inbound_order(record))
            except InvalidOrder as exc:
                out.summary.invalid += 1
                out.results[record.message_id] = RecordResult(False, f"not a production order: {exc}")
                logger.error(
                    "not a production order",
                    reason=str(exc),
                    message_id=record.message_id,
                    attempt=record.attributes.approximate_receive_count,
                )
        ledger = self._ledger.get_many(o.ref.order_id for o in orders)
        to_deliver: dict[str, list[InboundOrder]] = {}  # by idempotency key: same version once
        to_mark: list[InboundOrder] = []
        newest = _newest_versions(orders)
        for order in orders:
            entry = ledger.get(order.ref.order_id)
            key = order.key(self._system_id)
            if _already_delivered(order, key, entry):
                out.summary.already_delivered += 1
                to_mark.append(order)
            elif _superseded(order, entry, newest):
                out.summary.superseded += 1
                self._settle(out, order, True, "superseded by a newer version; not delivered, not marked")
            else:
                to_deliver.setdefault(key, []).append(order)

        keys = list(to_deliver)
        for key, result in zip(
            keys, self._pool.map(lambda k: self._deliver(to_deliver[k][0], k, time_left), keys), strict=True
        ):
            for order in to_deliver[key]:
                self._after_delivery(out, order, result, to_mark)

        self._mark(out, to_mark)
        return out

    def _deliver(self, order: InboundOrder, key: str, time_left: Callable[[], float]) -> DeliveryResult | None:
        if time_left() <= 0:
            return None  # too close to the timeout to start: the queue brings it back
        result = self._target.deliver(order.body, key, order.reexport_since)
        if result.accepted:
            try:
                self._ledger.record_delivery(order.ref, key)
            except (ClientError, BotoCoreError) as exc:
                # It did arrive: go on and mark it. Only a redelivery before the mark could repeat it.
                logger.warning(
                    "could not record a delivery in the ledger", order_id=order.ref.order_id, reason=str(exc)
                )
        return result

    def _after_delivery(
        self, out: BatchOutcome, order: InboundOrder, result: DeliveryResult | None, to_mark: list[InboundOrder]
    ) -> None:
        s = out.summary
        if result is None:
            s.not_started += 1
            self._settle(out, order, False, "not started: the invocation is close to its timeout")
        elif result.accepted:
            s.delivered += result.outcome is Outcome.DELIVERED
            s.already_delivered += result.outcome is Outcome.ALREADY_DELIVERED
            to_mark.append(order)
        elif result.outcome is Outcome.REJECTED:
            s.rejected += 1
            self._park(out, order, result.reason)
        else:
            s.failed += 1
            self._settle(out, order, False, f"delivery failed: {result.reason}")

    def _park(self, out: BatchOutcome, order: InboundOrder, reason: str) -> None:
        """A permanent rejection goes straight to the DLQ: retrying cannot change the answer."""
        attributes = string_attributes({Attr.ORDER_ID: str(order.ref.order_id), Attr.FAILURE_REASON: reason})
        report = self._dlq.send([OutboundMessage("0", order.body, attributes)])
        if report.sent:
            self._settle(out, order, True, f"rejected by the receiving system, moved to the DLQ: {reason}")
        else:
            self._settle(out, order, False, f"rejected ({reason}) and could not be moved to the DLQ")

    def _mark(self, out: BatchOutcome, to_mark: list[InboundOrder]) -> None:
        # One mark per order even when two messages carried it.
        unique = {o.ref.order_id: o for o in to_mark}
        batches = list(chunk(list(unique.values()), MAX_MARK_BATCH))
        errors = list(self._pool.map(self._mark_batch, batches))
        out.summary.mark_calls += len(batches)
        marked: list[OrderRef] = []
        mark_errors: dict[int, str] = {}
        for batch, error in zip(batches, errors, strict=True):
            if error is None:
                marked.extend(o.ref for o in batch)
            else:
                mark_errors.update((o.ref.order_id, error) for o in batch)
        out.summary.marked += len(marked)
        out.summary.mark_failures += len(mark_errors)
        list(self._pool.map(self._record_marked, marked))
        for order in to_mark:
            error = mark_errors.get(order.ref.order_id)
            if error is None:
                self._settle(out, order, True, "delivered and marked as exported")
            else:
                self._settle(out, order, False, f"delivered, but mark-as-exported failed: {error}")

    def _mark_batch(self, batch: list[InboundOrder]) -> str | None:
        try:
            # The note shows in Traede's timeline: the key finds the order in the ERP.
            self._traede.mark_as_exported(
                [
                    (o.ref.order_id, f"Delivered by traede-export, Idempotency-Key {o.key(self._system_id)}")
                    for o in batch
                ]
            )
        except TraedeError as exc:
            return str(exc)
        return None

    def _record_marked(self, ref: OrderRef) -> None:
        try:
            self._ledger.record_marked(ref)
        except (ClientError, BotoCoreError) as exc:
            # Traede has the mark; the ledger's copy only feeds `status`. Not worth a redelivery.
            logger.warning("could not record a mark", order_id=ref.order_id, reason=str(exc))

    def _settle(self, out: BatchOutcome, order: InboundOrder, ok: bool, reason: str) -> None:
        out.results[order.message_id] = RecordResult(ok, reason)
        log: Any = logger.info if ok else logger.warning
        log(
            reason,
            order_id=order.ref.order_id,
            version=order.ref.version,
            attempt=order.receive_count,
            message_id=order.message_id,
            outcome="ok" if ok else "failed",
            reason=reason,
        )


def _newest_versions(orders: Sequence[InboundOrder]) -> dict[int, str]:
    newest: dict[int, str] = {}
    for o in orders:
        if o.ref.version > newest.get(o.ref.order_id, ""):
            newest[o.ref.order_id] = o.ref.version
    return newest


def _already_delivered(order: InboundOrder, key: str, entry: LedgerEntry | None) -> bool:
    if entry is None:
        return False
    if order.reexport_since:
        return entry.delivered_key == key
    return entry.delivered_version >= order.ref.version


def _superseded(order: InboundOrder, entry: LedgerEntry | None, newest: dict[int, str]) -> bool:
    if newest[order.ref.order_id] > order.ref.version:
        return True
    return entry is not None and entry.enqueued_version > order.ref.version
