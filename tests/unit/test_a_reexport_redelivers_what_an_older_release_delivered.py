"""A re-export redelivers a version that an older release recorded as delivered before the
re-export's instant, as it does one this release delivered.

Older releases wrote `delivered_at` (text), not `delivered_ms`. The ledger reads one as the other
(an instant that does not parse, hand-edited or written as other text, as 0), so the plan
(`protocol.needs_delivery`) sees a delivery before the instant and says DELIVER; the lease's guard
(`delivered_ms < :since`) must agree, or the copy is deferred on every receive until the dead-letter
queue, and the order the operator asked for never reaches the ERP again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede, queued_copy
from helpers.ledger import SYSTEM, memory_ledger, store_of
from traede_export.forward import Forwarder
from traede_export.models import InboundOrder, epoch_ms

V1 = "2026-01-05T10:00:00.000000Z"
SINCE = "2026-02-01T00:00:00Z"  # the re-export's instant: well after the old release's delivery


def reexport_copy(message_id: str) -> InboundOrder:
    return queued_copy(V1, message_id=message_id, run_id="reexport-run", reexport_since=SINCE)


@pytest.mark.parametrize(
    ("delivered_at", "delivered_ms"),
    [
        ("2026-01-05T10:00:05Z", epoch_ms("2026-01-05T10:00:05Z")),
        ("Mon, 05 Jan 2026 10:00:05 GMT", 0),
        ("2026-01-05", 0),
        ("", 0),
    ],
)
def test_a_reexport_posts_a_version_an_older_release_delivered_before_its_instant(
    delivered_at: str, delivered_ms: int
) -> None:
    ledger = memory_ledger()
    # An item as an older release left it (tests/faults/test_ledger_migration.py): text instants.
    store_of(ledger).items[f"order#{SYSTEM}#1"] = {
        "pk": {"S": f"order#{SYSTEM}#1"},
        "delivered_version": {"S": V1},
        "delivered_at": {"S": delivered_at},
        "marked_version": {"S": V1},
        "marked_at": {"S": "2026-01-05T10:00:07Z"},
    }
    assert ledger.read([1])[1].delivered_ms == delivered_ms  # what the plan compares with the re-export's instant
    target, traede = FakeTarget(), FakeTraede()
    with ThreadPoolExecutor(2) as pool:
        forwarder = Forwarder(target, traede, ledger, FakeDlq(), SYSTEM, pool)
        outcomes = [forwarder.forward([reexport_copy(f"m-{i}")], lambda: 60.0) for i in range(5)]  # maxReceiveCount
    assert target.posts == [reexport_copy("m").key(SYSTEM)], (
        f"POSTs {target.posts}; deferred {[o.summary.deferred for o in outcomes]}"
    )
    assert traede.marked == [1]
