"""A poll killed between its claims and its send leaves no order stranded without an alarm
(review 20, finding 5; found by the simulation's silent-stall check).

The claims carry the in-flight lease (IN_FLIGHT_LEASE_SECONDS, 2 h), but the messages never
reached the queue: every poll for the next 2 hours skips the orders as "in flight"
(OrdersSkippedInFlight, no alarm), and one killed poll is one Errors datapoint, which
PollerErrorsAlarm (2 of 3 periods) does not raise. The contract: an order that cannot move raises
an alarm within one poll interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from helpers.fakes import FakeExport, FakeOffload, FakeQueue
from helpers.ledger import SYSTEM
from traede_export.config import ExportOptions
from traede_export.ledger import ExportLedger
from traede_export.poll import Poller
from traede_export.queue import OutboundMessage, SendReport
from traede_local.memory_store import MemoryStore

LEASE, POLL_INTERVAL = 7200, 300


class Killed(BaseException):
    """Lambda's timeout: the invocation stops where it stands."""


class DyingQueue(FakeQueue):
    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        raise Killed


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def poller(ledger: ExportLedger, queue: FakeQueue) -> Poller:
    orders: list[Any] = [{"id": 1, "updated_at": "2026-01-05 10:00:00"}, {"id": 2, "updated_at": "2026-01-05 10:00:00"}]
    return Poller(
        traede=FakeExport([orders]),
        ledger=ledger,
        queue=queue,
        dlq=FakeQueue(),
        system_id=SYSTEM,
        options=ExportOptions(page_size=60),
        lease_seconds=LEASE,
        claims=FakeOffload(),
    )


def test_the_next_poll_enqueues_or_alarms_what_a_killed_poll_claimed_but_never_sent() -> None:
    clock = Clock()
    ledger = ExportLedger(MemoryStore(), SYSTEM, clock)
    with contextlib.suppress(Killed):
        poller(ledger, DyingQueue()).run("run-1")  # claims both orders, killed before its send
    clock.now += POLL_INTERVAL
    queue = FakeQueue()
    again = poller(ledger, queue).run("run-2")
    alarmed = again.failed > 0 or again.blocked or again.paging_stalled
    assert again.enqueued == 2 or alarmed, f"skipped {again.skipped} as in flight, nothing alarmed: {again.counts()}"
