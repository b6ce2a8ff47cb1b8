"""What the poller and the forwarder need of their collaborators, so the unit tier runs them on fakes.

The adapters (`TraedeClient`, `TargetClient`, `ExportLedger`, `QueueWriter`, `ClaimCheck`) are the
real implementations; the unit tier's fakes implement the same small protocols, and its ledger is
the real `ExportLedger` on an in-memory store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from traede_export.config import ExportOptions
    from traede_export.ledger import Delivered, Lease
    from traede_export.models import OrderRef
    from traede_export.protocol import LedgerEntry
    from traede_export.queue import OutboundMessage, SendReport
    from traede_export.target import DeliveryResult
    from traede_export.traede import ExportStats

Attributes = dict[str, dict[str, str]]


class Target(Protocol):
    def deliver(self, body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult: ...


class Marker(Protocol):
    def mark_as_exported(self, notes: Sequence[tuple[int, str]]) -> None: ...


class Queue(Protocol):
    def send(self, messages: Sequence[OutboundMessage]) -> SendReport: ...


class ForwarderLedger(Protocol):
    def get_many(self, order_ids: Iterable[int]) -> dict[int, LedgerEntry]: ...
    def begin_deliveries(self, leases: Sequence[Lease], seconds: int, token: str) -> list[bool]: ...
    def end_delivery(self, ref: OrderRef, token: str) -> bool: ...
    def end_deliveries(self, refs: Sequence[OrderRef], token: str) -> list[bool]: ...
    def shorten_deliveries(self, refs: Sequence[OrderRef], token: str, seconds: float) -> list[bool]: ...
    def record_deliveries(self, deliveries: Sequence[Delivered], token: str = "") -> list[bool]: ...
    def record_rejection(self, ref: OrderRef, reason: str, token: str = "") -> bool: ...
    def record_marks(self, refs: Sequence[OrderRef], token: str, seen: Mapping[int, str]) -> list[bool]: ...
    def finish_deliveries(
        self,
        deliveries: Sequence[Delivered],
        marks: Sequence[OrderRef],
        token: str,
        seen: Mapping[int, str],
    ) -> list[bool]: ...
    def undo_marks(self, marks: Sequence[tuple[OrderRef, LedgerEntry | None]], token: str) -> list[bool]: ...
    def release(self, ref: OrderRef, run_id: str) -> bool: ...
    def forget_rejection(self, ref: OrderRef) -> bool: ...


class ExportSource(Protocol):
    def iter_export(
        self,
        options: ExportOptions,
        stats: ExportStats,
        not_exported_since: datetime | None = None,
        keep_going: Callable[[], bool] = ...,
    ) -> Iterator[list[dict[str, Any]]]: ...


class PollerLedger(Protocol):
    def claim_many(
        self, refs: Sequence[OrderRef], run_id: str, lease_seconds: int, force: bool = False
    ) -> list[bool]: ...
    def hold(self, refs: Sequence[OrderRef], run_id: str, lease_seconds: int) -> list[bool]: ...
    def release(self, ref: OrderRef, run_id: str) -> bool: ...
    def first_sighting(self, fingerprint: str) -> bool: ...
    def unsee(self, fingerprint: str) -> None: ...


class Offload(Protocol):
    """The claim-check: large bodies go to S3 and travel as a pointer."""

    def is_large(self, body: str) -> bool: ...
    def offload_order(self, ref: OrderRef, body: str, attributes: Attributes) -> tuple[str, Attributes]: ...
    def offload(self, key: str, body: str, attributes: Attributes) -> tuple[str, Attributes]: ...
