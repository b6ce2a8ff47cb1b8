"""A delivery record or refusal ends the delivery lease only when its writer holds it: the state
table names "the lease's holder" as their owner, but their guards do not say so (review 20,
finding 4). Reachable when a POST outlives its lease (finding 3, with TIME_SAFETY_MARGIN_SECONDS
over the lease's 30 s grace)."""

from __future__ import annotations

import pytest

from helpers.ledger import entry
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef
from traede_local.memory_store import MemoryStore

V1, V2 = OrderRef(1, "2026-01-01 00:00:00"), OrderRef(1, "2026-01-02 00:00:00")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("answer", ["2xx", "4xx"])
def test_a_late_answer_to_an_older_post_leaves_the_live_lease_of_a_newer_one(answer: str) -> None:
    clock = Clock()
    ledger = ExportLedger(MemoryStore(), "erp", clock)
    assert ledger.begin_deliveries([(V1, "key-v1")], 60, "batch-a") == [True]
    clock.now += 61  # A's POST of v1 outlived its lease
    assert ledger.begin_deliveries([(V2, "key-v2")], 60, "batch-b") == [True]  # B's POST of v2 is live
    if answer == "2xx":
        ledger.record_deliveries([(V1, "key-v1")])  # A's answer arrives
    else:
        ledger.record_rejection(V1, "HTTP 422")
    assert entry(ledger, 1).delivering_token == "batch-b", "A's write removed B's live lease"
    # Otherwise a third copy of v2 (an SQS duplicate) is POSTed while B's is still on its way:
    assert ledger.begin_deliveries([(V2, "key-v2")], 60, "batch-c") == [False]
