"""The poller's logic: stream export pages onto the queue, skipping versions in flight."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger

from traede_export.config import ExportOptions
from traede_export.ledger import ExportLedger
from traede_export.models import (
    MAX_SEND_BATCH,
    Attr,
    InvalidOrder,
    OrderRef,
    chunk,
    order_attributes,
    string_attributes,
    utc_text,
)
from traede_export.queue import OutboundMessage, QueueWriter
from traede_export.traede import ExportStats, TraedeClient, TraedeError

logger = Logger(child=True)


@dataclass
class PollResult:
    run_id: str
    reexport_since: str | None = None
    fetched: int = 0
    enqueued: int = 0
    skipped: int = 0  # versions already in flight
    invalid: int = 0  # export entries that are not production orders (parked in the DLQ once)
    failed: int = 0  # orders that could not be enqueued
    pages: int = 0
    duplicates: int = 0  # orders the server returned twice in this run
    stopped_early: bool = False
    seconds: float = 0.0
    error: str | None = None

    def counts(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Poller:
    traede: TraedeClient
    ledger: ExportLedger
    queue: QueueWriter
    dlq: QueueWriter
    system_id: str
    options: ExportOptions
    lease_seconds: int
    workers: int = 8  # sends in flight at once

    def run(
        self,
        run_id: str,
        not_exported_since: datetime | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> PollResult:
        started = time.monotonic()
        since = utc_text(not_exported_since) if not_exported_since else None
        result = PollResult(run_id=run_id, reexport_since=since)
        stats = ExportStats()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="poll") as pool:
            try:
                for page in self.traede.iter_export(self.options, stats, not_exported_since, keep_going):
                    self._enqueue_page(page, result, pool)
                    if not keep_going():
                        stats.stopped_early = True
                        break
            except TraedeError as exc:
                result.error = str(exc)
        result.fetched, result.pages, result.duplicates = stats.fetched, stats.pages, stats.duplicates
        result.stopped_early = stats.stopped_early
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _enqueue_page(self, page: list[dict[str, Any]], result: PollResult, pool: ThreadPoolExecutor) -> None:
        refs: list[tuple[OrderRef, dict[str, Any]]] = []
        for order in page:
            try:
                refs.append((OrderRef.from_order(order), order))
            except InvalidOrder as exc:
                result.invalid += 1
                self._park_invalid(order, str(exc))
        force = result.reexport_since is not None
        # One page, one transaction (a page of 60 is within TransactWriteItems' 100).
        claimed = self.ledger.claim_many([r for r, _ in refs], result.run_id, self.lease_seconds, force)
        messages: dict[str, tuple[OrderRef, OutboundMessage]] = {}
        for (ref, order), ok in zip(refs, claimed, strict=True):
            if not ok:
                result.skipped += 1
                continue
            entry_id = str(ref.order_id)
            attributes = order_attributes(self.system_id, ref, result.run_id, result.reexport_since)
            messages[entry_id] = (ref, OutboundMessage(entry_id, json.dumps(order), attributes))
        batches = list(chunk([m for _, m in messages.values()], MAX_SEND_BATCH))
        for report in pool.map(self.queue.send, batches):
            result.enqueued += len(report.sent)
            for entry_id, reason in report.failed.items():
                ref = messages[entry_id][0]
                result.failed += 1
                logger.error("could not enqueue order", order_id=ref.order_id, reason=reason)
                self.ledger.release(ref, result.run_id)  # let the next poll try again

    def _park_invalid(self, entry: Any, reason: str) -> None:
        """Put an export entry that is not an order on the DLQ, once: it stays pending in Traede."""
        body = json.dumps(entry, sort_keys=True)
        order_id = entry.get("id") if isinstance(entry, dict) else None
        logger.error("an export entry is not a production order", order_id=order_id, reason=reason)
        if not self.ledger.first_sighting(hashlib.sha256(body.encode("utf-8")).hexdigest()):
            return
        attributes = string_attributes(
            {Attr.SYSTEM_ID: self.system_id, Attr.ORDER_ID: str(order_id or ""), Attr.FAILURE_REASON: reason}
        )
        report = self.dlq.send([OutboundMessage("0", body, attributes)])
        if report.failed:
            logger.error("could not park an invalid export entry", order_id=order_id, reason=report.failed["0"])
