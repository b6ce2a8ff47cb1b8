"""How each SQS record of a forwarder batch ends: settled (deleted), failed (it comes back), or parked.

A record settled ok is deleted by SQS; one that failed comes back after the visibility timeout;
a permanent failure is parked in the DLQ at once, with the reason and every attribute it came with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from traede_export.models import Attr, InboundOrder, SqsAttributes, string_attributes
from traede_export.ports import Queue
from traede_export.queue import OutboundMessage

if TYPE_CHECKING:  # a TypedDict, for annotations only: Powertools' batch package costs ~30 ms to import
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger(child=True)
MAX_REASON_CHARS = 1000


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
    deferred: int = 0  # another delivery of the order holds its lease
    stale: int = 0  # delivered, but a newer version had been delivered first
    went_backwards: int = 0  # the latest poll saw an older version than the ledger delivered
    large_missing: int = 0  # a large order's S3 object was gone
    large_mismatch: int = 0  # a large order's S3 object held something else than its pointer names
    samples: int = 0  # test events (samples.py): delivered, never marked, never in the ledger
    reference_missing: int = 0  # accepted, but TARGET_REFERENCE failed or yielded nothing for the answer
    marked: int = 0
    mark_calls: int = 0
    mark_failures: int = 0
    mark_refused: int = 0
    stranded_marks: int = 0  # a failed mark whose record could not be taken back: late until a poll re-fetches it

    def counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class BatchOutcome:
    results: dict[str, RecordResult] = field(default_factory=dict)  # by SQS message id
    summary: ForwardSummary = field(default_factory=ForwardSummary)


def partial_batch_response(message_ids: Iterable[str], outcome: BatchOutcome) -> PartialItemFailureResponse:
    """SQS's partial-batch answer: every record not settled ok, including one with no result, comes back.

    Built directly: the forwarder settles the whole batch at once, so Powertools' BatchProcessor
    would only turn per-record exceptions back into this list.
    """
    failed = [m for m in message_ids if not (r := outcome.results.get(m)) or not r.ok]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


class Settler:
    """Writes each record's result into the batch's outcome, and logs it."""

    def __init__(self, out: BatchOutcome, dlq: Queue) -> None:
        self.out = out
        self._dlq = dlq

    @property
    def summary(self) -> ForwardSummary:
        return self.out.summary

    def settle(self, copies: Sequence[InboundOrder], ok: bool, reason: str) -> None:
        for c in copies:
            self.out.results[c.message_id] = RecordResult(ok, reason)
            self.log(c.message_id, c.ref.order_id, c.ref.version, c.receive_count)

    def park(self, copies: Sequence[InboundOrder], reason: str) -> None:
        """A permanent failure goes straight to the DLQ, with every attribute it came with."""
        self.park_messages([(c.message_id, c.message_body, c.attributes) for c in copies], reason)
        for c in copies:
            self.log(c.message_id, c.ref.order_id, c.ref.version, c.receive_count)

    def park_messages(self, messages: Sequence[tuple[str, str, SqsAttributes]], reason: str) -> None:
        reason = sqs_text(reason[:MAX_REASON_CHARS])
        outbound = [
            OutboundMessage(str(i), body, {**attrs, **string_attributes({Attr.FAILURE_REASON: reason})})
            for i, (_, body, attrs) in enumerate(messages)
        ]
        report = self._dlq.send(outbound)
        for i, (message_id, _, _) in enumerate(messages):
            if str(i) in report.failed:
                self.out.results[message_id] = RecordResult(False, f"{reason}; could not be moved to the DLQ")
            else:
                self.out.results[message_id] = RecordResult(True, f"{reason}; moved to the DLQ")

    def log(self, message_id: str, order_id: int | None, version: str | None, attempt: int) -> None:
        result = self.out.results[message_id]
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


def sqs_text(text: str) -> str:
    """`text` with "?" for each character SQS refuses in an attribute (a reason may quote an ERP's or
    Traede's error body: binary, ANSI colours, NUL), so the parking itself cannot fail on it."""
    return "".join(
        c if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c >= "\U00010000" else "?"
        for c in text
    )
