"""A re-export redelivers a version that the previous release recorded as delivered before the
re-export's instant, as it does one this release delivered.

The previous release wrote `delivered_at` (text), not `delivered_ms`. The ledger reads one as the
other, so the plan (`protocol.needs_delivery`) sees a delivery before the instant and says DELIVER;
the lease's guard (`delivered_ms < :since`) must agree, or the copy is deferred on every receive
until the dead-letter queue, and the order the operator asked for never reaches the ERP again.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede
from helpers.ledger import SYSTEM, memory_ledger, store_of
from traede_export.forward import Forwarder
from traede_export.models import Attr, InboundOrder, OrderRef, string_attributes

V1 = "2026-01-05T10:00:00.000000Z"
SINCE = "2026-02-01T00:00:00Z"  # the re-export's instant: well after the old release's delivery


def reexport_copy(message_id: str) -> InboundOrder:
    return InboundOrder(
        message_id=message_id,
        ref=OrderRef(1, V1),
        body=json.dumps({"id": 1, "updated_at": V1}),
        reexport_since=SINCE,
        receive_count=1,
        attributes=string_attributes({Attr.ORDER_ID: "1", Attr.RUN_ID: "reexport-run"}),
    )


def test_a_reexport_posts_a_version_the_previous_release_delivered_before_its_instant() -> None:
    ledger = memory_ledger()
    # An item as the previous release left it (tests/faults/test_ledger_migration.py): text instants.
    store_of(ledger).items[f"order#{SYSTEM}#1"] = {
        "pk": {"S": f"order#{SYSTEM}#1"},
        "delivered_version": {"S": V1},
        "delivered_at": {"S": "2026-01-05T10:00:05Z"},
        "marked_version": {"S": V1},
        "marked_at": {"S": "2026-01-05T10:00:07Z"},
    }
    target, traede = FakeTarget(), FakeTraede()
    with ThreadPoolExecutor(2) as pool:
        forwarder = Forwarder(target, traede, ledger, FakeDlq(), SYSTEM, pool)
        outcomes = [forwarder.forward([reexport_copy(f"m-{i}")], lambda: 60.0) for i in range(5)]  # maxReceiveCount
    assert target.posts == [reexport_copy("m").key(SYSTEM)], (
        f"POSTs {target.posts}; deferred {[o.summary.deferred for o in outcomes]}"
    )
    assert traede.marked == [1]
