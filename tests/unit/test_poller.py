"""The poller on in-memory fakes behind its ports, and the real ledger on an in-memory store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from helpers.fakes import FakeExport, FakeOffload, FakeQueue
from helpers.ledger import SYSTEM, entry
from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.ledger import ExportLedger
from traede_export.models import Attr, OrderRef
from traede_export.poll import Poller, PollResult
from traede_local.memory_store import Fault, MemoryStore

T1, T2 = "2026-01-05 10:00:00", "2026-01-06 10:00:00"


def order(order_id: int, updated_at: str = T1, **extra: Any) -> dict[str, Any]:
    return {"id": order_id, "updated_at": updated_at, **extra}


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, pages: list[list[Any]], page_size: int = 60, repeat: bool = False) -> None:
        self.clock = Clock()
        self.store = MemoryStore()
        self.ledger = ExportLedger(self.store, SYSTEM, self.clock)
        self.export = FakeExport(pages, repeat=repeat)
        self.queue, self.dlq, self.claims = FakeQueue(), FakeQueue(), FakeOffload()
        self.poller = Poller(
            traede=self.export,
            ledger=self.ledger,
            queue=self.queue,
            dlq=self.dlq,
            system_id=SYSTEM,
            options=ExportOptions(page_size=page_size),
            lease_seconds=600,
            claims=self.claims,
        )

    def poll(self, run_id: str = "run-1", since: datetime | None = None, **kwargs: Any) -> PollResult:
        return self.poller.run(run_id, since, **kwargs)

    def queued_ids(self) -> list[int]:
        return [int(m.attributes[Attr.ORDER_ID]["StringValue"]) for m in self.queue.sent]


def test_each_order_is_claimed_and_enqueued_once_with_its_attributes() -> None:
    w = World([[order(1), order(2)], [order(3)]], page_size=2)
    result = w.poll()
    assert (result.fetched, result.enqueued, result.pages) == (3, 3, 3)
    assert w.queued_ids() == [1, 2, 3]
    attributes = w.queue.sent[0].attributes
    assert attributes[Attr.RUN_ID]["StringValue"] == "run-1"
    assert attributes[Attr.UPDATED_AT]["StringValue"] == T1
    assert json.loads(w.queue.sent[0].body) == order(1)
    assert entry(w.ledger, 1).enqueued_version == OrderRef(1, T1).version


def test_a_version_in_flight_is_skipped_until_its_lease_runs_out() -> None:
    w = World([[order(1), order(2)]])
    w.poll("run-1")
    again = w.poll("run-2")
    assert (again.enqueued, again.skipped) == (0, 2)
    w.clock.now += 601
    assert w.poll("run-3").enqueued == 2


def test_a_newer_version_goes_through_at_once() -> None:
    w = World([[order(1)]])
    w.poll("run-1")
    w.export.pages = [[order(1, T2)]]
    assert w.poll("run-2").enqueued == 1
    assert json.loads(w.queue.sent[-1].body)["updated_at"] == T2


def test_a_reexport_takes_versions_in_flight_and_says_since_when() -> None:
    w = World([[order(1)]])
    w.poll("run-1")
    since = datetime(2026, 1, 1, tzinfo=UTC)
    result = w.poll("run-2", since)
    assert result.enqueued == 1 and result.reexport_since == "2026-01-01T00:00:00Z"
    assert w.queue.sent[-1].attributes[Attr.REEXPORT_SINCE]["StringValue"] == "2026-01-01T00:00:00Z"


def test_an_order_that_could_not_be_sent_gives_its_lease_back() -> None:
    w = World([[order(1), order(2)]])
    w.queue.refuse = lambda m: m.attributes[Attr.ORDER_ID]["StringValue"] == "2"
    result = w.poll("run-1")
    assert (result.enqueued, result.failed) == (1, 1)
    w.queue.refuse = lambda m: False
    assert w.poll("run-2").enqueued == 1  # order 2 at once, not after the lease


def test_claims_whose_answers_were_lost_are_read_back_and_enqueued() -> None:
    w = World([[order(1), order(2)]])
    w.store.fault = lambda operation, updates: Fault.LOST if operation == "TransactWriteItems" else Fault.NONE
    result = w.poll()
    assert (result.enqueued, result.failed, result.error) == (2, 0, None)


def test_claims_that_cannot_be_read_back_fail_alone_and_the_poll_goes_on() -> None:
    w = World([[order(1), order(2)], [order(3)]], page_size=2)
    faults = iter([Fault.LOST, Fault.FAIL])  # the first page's claims, then reading them back

    def hook(operation: str, updates: Any) -> Fault:
        return next(faults, Fault.NONE) if operation in ("TransactWriteItems", "BatchGetItem") else Fault.NONE

    w.store.fault = hook
    result = w.poll("run-1")
    assert (result.enqueued, result.failed, result.error) == (1, 2, None)  # EnqueueFailures: alarmed
    assert w.queued_ids() == [3]
    assert w.poll("run-2").enqueued == 2  # their leases were given back


def test_an_entry_that_is_no_order_is_parked_once() -> None:
    w = World([[order(1), {"id": 2, "updated_at": "last Tuesday"}, "not even an object"]])
    first = w.poll("run-1")
    assert (first.enqueued, first.invalid) == (1, 2)
    reasons = [m.attributes[Attr.FAILURE_REASON]["StringValue"] for m in w.dlq.sent]
    assert any("not an instant" in r for r in reasons) and any("not a JSON object" in r for r in reasons)
    w.clock.now += 601
    second = w.poll("run-2")
    assert second.invalid == 2 and len(w.dlq.sent) == 2  # counted again (alarmed), parked once


def test_an_entry_whose_parking_failed_is_parked_by_the_next_poll() -> None:
    w = World([[{"id": 2, "updated_at": "last Tuesday"}]])
    w.dlq.refuse = lambda m: True
    w.poll("run-1")
    w.dlq.refuse = lambda m: False
    w.poll("run-2")
    assert len(w.dlq.sent) == 1


def test_a_large_order_travels_as_a_pointer_and_its_failed_upload_gives_the_lease_back() -> None:
    w = World([[order(1, lines="x" * 20_000)]])
    w.claims.fail = True
    failed = w.poll("run-1")
    assert (failed.enqueued, failed.failed) == (0, 1)
    w.claims.fail = False
    result = w.poll("run-2")
    assert (result.enqueued, result.large) == (1, 1)
    assert json.loads(w.queue.sent[0].body)[0] == "pointer"


def test_a_server_that_repeats_one_page_of_stuck_orders_is_a_stalled_paging() -> None:
    w = World([[order(1), order(2)]], page_size=2, repeat=True)
    assert not w.poll("run-1").paging_stalled  # the page moved
    stalled = w.poll("run-2")
    assert stalled.paging_stalled and stalled.pages == 2 and stalled.skipped == 2


def test_a_repeated_page_that_moved_something_is_no_stall() -> None:
    w = World([[order(1)]], page_size=2, repeat=True)
    w.poll("run-1")
    w.export.pages = [[order(1), order(2)]]  # order 1 in flight, order 2 new
    result = w.poll("run-2")
    assert (result.enqueued, result.skipped, result.paging_stalled) == (1, 1, False)


def test_the_poll_stops_early_when_time_runs_out() -> None:
    w = World([[order(1)], [order(2)]], page_size=1)
    calls = iter([True, False])
    result = w.poll(keep_going=lambda: next(calls, False))
    assert result.stopped_early and w.queued_ids() == [1]


@pytest.mark.parametrize(
    ("error", "blocked"),
    [
        (TraedeError("export page 0 answered HTTP 401", 401), True),
        (TraedeError("export page 0 answered HTTP 302 redirect", 302), True),
        (TraedeError("export page 0 has no 'production_orders' list", unreadable=True), True),
        (TraedeError("export page 0 answered HTTP 503", 503), False),
        (TraedeError("export page 0 failed: ReadTimeout"), False),
    ],
)
def test_a_traede_error_stops_the_poll_and_says_whether_it_will_repeat(error: TraedeError, blocked: bool) -> None:
    w = World([[order(1)]])
    w.export.error = error
    result = w.poll()
    assert result.error == str(error) and result.blocked is blocked
