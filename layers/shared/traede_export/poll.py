"""The poller's logic: stream export pages onto the queue, skipping versions in flight."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.config import ExportOptions
from traede_export.errors import InvalidOrder, PartialWrite, TraedeError
from traede_export.models import (
    MAX_SEND_BATCH,
    Attr,
    OrderRef,
    chunk,
    message_body,
    order_attributes,
    string_attributes,
    utc_text,
)
from traede_export.ports import ExportSource, Offload, PollerLedger, Queue
from traede_export.queue import OutboundMessage
from traede_export.traede import ExportStats

logger = Logger(child=True)
Body = tuple[str, dict[str, dict[str, str]]]  # a message's body and its SQS attributes
# A claim's lease until its message is on the queue: longer than a poll can run (its timeout, 240 s),
# shorter than the default interval between polls (300 s).
CLAIM_SECONDS = 270


@dataclass
class PollResult:
    run_id: str
    reexport_since: str | None = None
    fetched: int = 0
    enqueued: int = 0
    skipped: int = 0  # versions already in flight
    invalid: int = 0  # export entries that are not production orders (parked in the DLQ once)
    failed: int = 0  # orders that could not be enqueued
    large: int = 0  # orders over the threshold, enqueued as a pointer to their S3 object
    pages: int = 0
    duplicates: int = 0  # orders the server returned twice in this run
    stopped_early: bool = False
    # The server ignores `page` and nothing on its one page could move: the orders behind it starve.
    paging_stalled: bool = False
    seconds: float = 0.0
    error: str | None = None
    # The error repeats on every poll until someone fixes it (credentials, URL, a body that is not the export).
    blocked: bool = False

    def counts(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Poller:
    traede: ExportSource
    ledger: PollerLedger
    queue: Queue
    dlq: Queue
    system_id: str
    options: ExportOptions
    lease_seconds: int
    claims: Offload
    workers: int = 8  # uploads and sends in flight at once
    executor: Callable[[int], Executor] = ThreadPoolExecutor  # the simulation runs them inline

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
        with self.executor(self.workers) as pool:
            try:
                for page in self.traede.iter_export(self.options, stats, not_exported_since, keep_going):
                    self._enqueue_page(page, result, pool, keep_going)
                    if not keep_going():
                        stats.stopped_early = True
                        break
            except TraedeError as exc:
                result.error = str(exc)
                result.blocked = exc.persistent
        result.fetched, result.pages, result.duplicates = stats.fetched, stats.pages, stats.duplicates
        result.stopped_early = stats.stopped_early
        # Stuck: in flight or refused (skipped), not orders (invalid: parked once, pending for ever), or failed.
        stuck = result.skipped + result.invalid + result.failed
        result.paging_stalled = stats.page_repeated and result.enqueued == 0 and stuck > 0
        if result.paging_stalled:
            logger.error(
                "paging stalled: the server repeats one page and none of its orders can move",
                pages=stats.pages,
                fetched=stats.fetched,
                skipped=result.skipped,
            )
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _enqueue_page(
        self,
        page: list[dict[str, Any]],
        result: PollResult,
        pool: Executor,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> None:
        refs: list[tuple[OrderRef, dict[str, Any]]] = []
        for order in page:
            try:
                refs.append((OrderRef.from_order(order), order))
            except InvalidOrder as exc:
                result.invalid += 1
                self._park_invalid(order, str(exc))
        force = result.reexport_since is not None
        # The page's claims in one ledger call (transactions of up to 100 orders). A claim whose
        # answer was lost was read back by its token; what is still unknown fails alone (alarmed),
        # never the whole poll, and its lease is given back if it can be.
        claimed: list[bool | None]
        error = ""
        try:
            claimed = list(self.ledger.claim_many([r for r, _ in refs], result.run_id, self._claim_seconds, force))
        except PartialWrite as exc:  # the claims that took effect are enqueued, not left to their lease
            claimed, error = list(exc.results), type(exc.error).__name__
        except (ClientError, BotoCoreError) as exc:
            claimed, error = [None] * len(refs), type(exc).__name__
        sending: list[tuple[OrderRef, dict[str, Any]]] = []
        for (ref, order), ok in zip(refs, claimed, strict=True):
            if ok:
                sending.append((ref, order))
            elif ok is None:
                self._give_back(ref, result, f"could not claim order: {error}")
            else:
                result.skipped += 1
        ready: list[tuple[OrderRef, Body]] = []
        for (ref, _), body in zip(
            sending, pool.map(lambda r: self._body(r[0], r[1], result, keep_going), sending), strict=True
        ):
            if body is None:
                self._give_back(ref, result, "could not store the large order in S3")
            else:
                ready.append((ref, body))
        # QueueWriter splits these further to stay within SendMessageBatch's 1 MiB total.
        batches = list(chunk(ready, MAX_SEND_BATCH))
        sends = pool.map(lambda b: self.queue.send(self._messages(b)), batches)
        sent: list[OrderRef] = []
        for batch, report in zip(batches, sends, strict=True):
            result.enqueued += len(report.sent)
            sent += [batch[int(entry_id)][0] for entry_id in report.sent]
            for entry_id, reason in report.failed.items():
                self._give_back(batch[int(entry_id)][0], result, reason)
        self._hold(sent, result.run_id)

    @property
    def _claim_seconds(self) -> int:
        return min(self.lease_seconds, CLAIM_SECONDS)

    def _hold(self, sent: list[OrderRef], run_id: str) -> None:
        """The page's messages are on the queue: their claims take the in-flight lease (one ledger call).

        Until then a claim lasts only `CLAIM_SECONDS`, so a poll killed between its claims and its
        send strands nothing for longer than that. A hold that fails leaves the short lease: the next
        poll may then enqueue a second copy, which the forwarder's ledger treats as a duplicate.
        """
        if not sent or self.lease_seconds <= CLAIM_SECONDS:
            return
        try:
            self.ledger.hold(sent, run_id, self.lease_seconds)
        except (ClientError, BotoCoreError, PartialWrite) as exc:
            logger.warning("could not extend the claims of enqueued orders", count=len(sent), reason=type(exc).__name__)

    def _body(
        self, ref: OrderRef, order: dict[str, Any], result: PollResult, keep_going: Callable[[], bool]
    ) -> Body | None:
        """The order's message body and attributes: its JSON, or a pointer to it in S3 when over the threshold."""
        body = message_body(order)
        attributes = order_attributes(self.system_id, ref, result.run_id, result.reexport_since)
        if self.claims.is_large(body):
            if not keep_going():  # past the deadline an upload could outlive the function, leases held
                logger.warning("large order not uploaded: the poll is close to its timeout", order_id=ref.order_id)
                return None
            try:
                body, attributes = self.claims.offload_order(ref, body, attributes)
            except (ClientError, BotoCoreError) as exc:
                logger.error("could not store a large order", order_id=ref.order_id, reason=str(exc))
                return None
            result.large += 1
        return body, attributes

    def _give_back(self, ref: OrderRef, result: PollResult, reason: str) -> None:
        result.failed += 1
        logger.error("could not enqueue order", order_id=ref.order_id, reason=reason)
        try:
            self.ledger.release(ref, result.run_id)  # let the next poll try again
        except (ClientError, BotoCoreError) as exc:  # the lease then runs out by itself; EnqueueFailures says so
            logger.error("could not give back a lease", order_id=ref.order_id, reason=type(exc).__name__)

    @staticmethod
    def _messages(batch: list[tuple[OrderRef, Body]]) -> list[OutboundMessage]:
        # Entry ids are positions in the batch: SQS wants them unique and plain, whatever the orders hold.
        return [OutboundMessage(str(i), body, attributes) for i, (_, (body, attributes)) in enumerate(batch)]

    def _park_invalid(self, entry: Any, reason: str) -> None:
        """Put an export entry that is not an order on the DLQ, once: it stays pending in Traede."""
        body = json.dumps(entry, sort_keys=True)
        order_id = _shown_id(entry.get("id") if isinstance(entry, dict) else None)
        logger.error("an export entry is not a production order", order_id=order_id, reason=reason)
        fingerprint = hashlib.sha256(body.encode("utf-8")).hexdigest()
        try:
            if not self.ledger.first_sighting(fingerprint):
                return
        except (ClientError, BotoCoreError) as exc:  # counted as invalid (alarmed); the next poll parks it
            logger.error("could not record an invalid entry's sighting", order_id=order_id, reason=type(exc).__name__)
            return
        attributes = string_attributes(
            {Attr.SYSTEM_ID: self.system_id, Attr.ORDER_ID: order_id, Attr.FAILURE_REASON: reason}
        )
        if self.claims.is_large(body):  # SQS refuses over 1 MiB: park a pointer to the whole entry
            try:
                body, attributes = self.claims.offload(f"invalid/{fingerprint}.json", body, attributes)
            except (ClientError, BotoCoreError) as exc:
                logger.error("could not store a large invalid export entry", order_id=order_id, reason=str(exc))
                self._unsee(fingerprint, order_id)
                return
        report = self.dlq.send([OutboundMessage("0", body, attributes)])
        if report.failed:
            logger.error("could not park an invalid export entry", order_id=order_id, reason=report.failed["0"])
            self._unsee(fingerprint, order_id)

    def _unsee(self, fingerprint: str, order_id: Any) -> None:
        """Not parked: let the next poll try again, so the DLQ the alarm points at does hold it."""
        try:
            self.ledger.unsee(fingerprint)
        except (ClientError, BotoCoreError) as exc:
            logger.error("could not undo an invalid entry's sighting", order_id=order_id, reason=str(exc))


MAX_SHOWN_ID_CHARS = 100


def _shown_id(raw: Any) -> str:
    """An invalid entry's `id` as text fit for a log line and an SQS attribute: a non-integer one is
    JSON-escaped (a lone surrogate or a control character would fail the send) and cut short (the
    attribute counts towards SQS's 1 MiB, which the body's S3 pointer keeps to otherwise)."""
    if raw is None:
        return ""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    return json.dumps(raw)[:MAX_SHOWN_ID_CHARS]
