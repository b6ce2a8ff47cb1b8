"""A re-export copy of a version delivered at or after the re-export's instant is never POSTed again,
even when its batch read the ledger before that delivery (review 20, finding 1)."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede, queued_copy
from helpers.ledger import SYSTEM, memory_ledger
from traede_export.forward import Forwarder
from traede_export.models import InboundOrder
from traede_export.protocol import LedgerEntry

V1 = "2026-01-05T10:00:00Z"
SINCE = "2026-01-01T00:00:00Z"  # the re-export's instant: before the scheduled copy's delivery (now)


def copy(message_id: str, reexport_since: str | None = None) -> InboundOrder:
    return queued_copy(V1, message_id=message_id, reexport_since=reexport_since)


def test_a_reexport_copy_planned_before_a_delivery_after_its_instant_does_not_post_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Batch B holds the re-export's copy and reads the ledger: nothing delivered yet, so its plan says
    # DELIVER. Before B takes the lease, batch A delivers and marks the scheduled copy (now, after
    # the re-export's instant) and gives the lease back. The lease's guard only refuses the key
    # recorded as delivered, which is A's; B's key differs, so B POSTs the version a second time.
    ledger = memory_ledger()
    target, traede = FakeTarget(), FakeTraede()
    read = ledger.get_many

    def read_then_the_scheduled_copy_is_delivered(order_ids: Iterable[int]) -> dict[int, LedgerEntry]:
        entries = read(order_ids)
        monkeypatch.setattr(ledger, "get_many", read)
        with ThreadPoolExecutor(2) as pool:
            out = Forwarder(target, FakeTraede(), ledger, FakeDlq(), SYSTEM, pool).forward([copy("a")], lambda: 60.0)
        assert out.summary.delivered == 1
        return entries

    monkeypatch.setattr(ledger, "get_many", read_then_the_scheduled_copy_is_delivered)
    with ThreadPoolExecutor(2) as pool:
        Forwarder(target, traede, ledger, FakeDlq(), SYSTEM, pool).forward(
            [replace(copy("b"), reexport_since=SINCE)], lambda: 60.0
        )
    # The plan on a fresh read rides on A's delivery (protocol.needs_delivery); the lease must agree.
    assert target.posts == [copy("a").key(SYSTEM)], target.posts
