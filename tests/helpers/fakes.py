"""In-memory stand-ins for the functions' ports (`traede_export.ports`): Traede, the ERP, the queues
and the claim-check. The ledger is never faked: it is the real `ExportLedger` on a `MemoryStore`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.models import Attr, InboundOrder, OrderRef, string_attributes
from traede_export.queue import OutboundMessage, SendReport
from traede_export.target import DeliveryResult, Outcome
from traede_export.traede import ExportStats, walk_pages

Attributes = dict[str, dict[str, str]]


def queued_copy(
    updated_at: str,
    *,
    order_id: int = 1,
    message_id: str = "m-1",
    run_id: str = "run-1",
    reexport_since: str | None = None,
) -> InboundOrder:
    """A copy of an order as the forwarder reads it off the queue, with the attributes its poll gave it."""
    return InboundOrder(
        message_id=message_id,
        ref=OrderRef(order_id, updated_at),
        body=json.dumps({"id": order_id, "updated_at": updated_at}),
        reexport_since=reexport_since,
        receive_count=1,
        attributes=string_attributes({Attr.ORDER_ID: str(order_id), Attr.RUN_ID: run_id}),
    )


class FakeTarget:
    """The ERP: answers 201 unless told otherwise per order id."""

    def __init__(self) -> None:
        self.posts: list[str] = []  # Idempotency-Keys, in order
        self.answers: dict[int, DeliveryResult] = {}

    def deliver(self, body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        self.posts.append(idempotency_key)
        return self.answers.get(json.loads(body)["id"], DeliveryResult(Outcome.DELIVERED, "HTTP 201", 201))


class FakeTraede:
    """Traede's mark-as-exported, failing with `error` when set."""

    def __init__(self) -> None:
        self.marked: list[int] = []
        self.notes: dict[int, str] = {}
        self.error: TraedeError | None = None

    def mark_as_exported(self, notes: Sequence[tuple[int, str]]) -> None:
        if self.error is not None:
            raise self.error
        self.marked.extend(order_id for order_id, _ in notes)
        self.notes.update(notes)


class FakeQueue:
    """A queue that takes every message, or refuses the entries `refuse` picks."""

    def __init__(self, refuse: Callable[[OutboundMessage], bool] = lambda m: False) -> None:
        self.sent: list[OutboundMessage] = []
        self.refuse = refuse

    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        report = SendReport()
        for m in messages:
            if self.refuse(m):
                report.failed[m.entry_id] = "refused"
            else:
                self.sent.append(m)
                report.sent.append(m.entry_id)
        return report

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.sent]


# The unit tier's DLQ: the same queue.
FakeDlq = FakeQueue


class FakeExport:
    """Traede's export: `pages` served by page number (the last one again past the end, as a server
    that ignores `page` does when `repeat` is set), walked by the real paging rules."""

    def __init__(self, pages: list[list[Any]], repeat: bool = False, error: TraedeError | None = None) -> None:
        self.pages = pages
        self.repeat = repeat
        self.error = error
        self.fetched: list[int] = []

    def fetch(self, page: int) -> list[Any]:
        self.fetched.append(page)
        if self.error is not None:
            raise self.error
        if page < len(self.pages):
            return self.pages[page]
        return self.pages[-1] if self.repeat and self.pages else []

    def iter_export(
        self,
        options: ExportOptions,
        stats: ExportStats,
        not_exported_since: datetime | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> Iterator[list[dict[str, Any]]]:
        return walk_pages(self.fetch, options.page_size, stats, keep_going)


class FakeOffload:
    """The claim-check: bodies over `threshold` characters become a pointer; `fail` refuses uploads."""

    def __init__(self, threshold: int = 10_000) -> None:
        self.threshold = threshold
        self.objects: dict[str, str] = {}
        self.fail = False

    def is_large(self, body: str) -> bool:
        return len(body) > self.threshold

    def offload_order(self, ref: OrderRef, body: str, attributes: Attributes) -> tuple[str, Attributes]:
        return self.offload(f"orders/{ref.order_id}/{ref.version}.json", body, attributes)

    def offload(self, key: str, body: str, attributes: Attributes) -> tuple[str, Attributes]:
        if self.fail:
            from traede_local.memory_store import failure

            raise failure("PutObject")
        self.objects[key] = body
        return json.dumps(["pointer", {"s3Key": key}]), attributes
