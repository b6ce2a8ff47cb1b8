"""A re-export redelivers a version whose recorded delivery instant does not parse, as the plan says.

An older release's item may carry a `delivered_at` that is not an instant (hand-edited, or written
by a release that stored text). The ledger reads it as 0 (`_entry`: "read as 0, as before"), so the
plan (`protocol.needs_delivery`, 0 < the re-export's instant) says DELIVER; but `_adopt_text_instants`
skips it and leaves the item without `delivered_ms`, and the lease's guard (`delivered_ms < :since`)
is false for an absent attribute. Plan and guard disagree, as they did for every text instant
before: the copy is deferred on every receive until the dead-letter queue, and the order the
operator asked for never reaches the ERP again.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede
from helpers.ledger import SYSTEM, memory_ledger, store_of
from traede_export.forward import Forwarder
from traede_export.models import Attr, InboundOrder, OrderRef, string_attributes

V1 = "2026-01-05T10:00:00.000000Z"
SINCE = "2026-02-01T00:00:00Z"  # the re-export's instant


def reexport_copy(message_id: str) -> InboundOrder:
    return InboundOrder(
        message_id=message_id,
        ref=OrderRef(1, V1),
        body=json.dumps({"id": 1, "updated_at": V1}),
        reexport_since=SINCE,
        receive_count=1,
        attributes=string_attributes({Attr.ORDER_ID: "1", Attr.RUN_ID: "reexport-run"}),
    )


@pytest.mark.parametrize("delivered_at", ["Mon, 05 Jan 2026 10:00:05 GMT", "2026-01-05", ""])
def test_a_reexport_posts_a_version_whose_delivered_at_does_not_parse(delivered_at: str) -> None:
    ledger = memory_ledger()
    store_of(ledger).items[f"order#{SYSTEM}#1"] = {
        "pk": {"S": f"order#{SYSTEM}#1"},
        "delivered_version": {"S": V1},
        "delivered_at": {"S": delivered_at},
        "marked_version": {"S": V1},
        "marked_at": {"S": "2026-01-05T10:00:07Z"},
    }
    assert ledger.read([1])[1].delivered_ms == 0  # what the plan compares with the re-export's instant
    target, traede = FakeTarget(), FakeTraede()
    with ThreadPoolExecutor(2) as pool:
        forwarder = Forwarder(target, traede, ledger, FakeDlq(), SYSTEM, pool)
        outcomes = [forwarder.forward([reexport_copy(f"m-{i}")], lambda: 60.0) for i in range(5)]  # maxReceiveCount
    assert target.posts == [reexport_copy("m").key(SYSTEM)], (
        f"POSTs {target.posts}; deferred {[o.summary.deferred for o in outcomes]}"
    )
    assert traede.marked == [1]
