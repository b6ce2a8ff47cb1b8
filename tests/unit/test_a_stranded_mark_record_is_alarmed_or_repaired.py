"""A mark record whose mark failed and whose take-back failed too is either marked by the copy's
redelivery or counted under an alarmed metric (review 20, finding 6).

Today the redelivery reads the record as a mark made (already_marked) and deletes the copy; the
order stays pending in Traede, skipped by every poll as in flight until its claim's lease (2 h)
runs out, and only a log line says so: MarkFailures has no alarm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede
from helpers.ledger import SYSTEM, memory_ledger
from traede_export.errors import TraedeError
from traede_export.forward import Forwarder
from traede_export.ledger_store import Update
from traede_export.models import Attr, InboundOrder, OrderRef, string_attributes
from traede_local.memory_store import Fault, MemoryStore

V1 = "2026-01-05T10:00:00Z"
# ForwardSummary fields whose metrics have an alarm in template.yaml.
ALARMED = ("stale", "went_backwards", "large_missing", "large_mismatch", "invalid")


def copy() -> InboundOrder:
    return InboundOrder(
        message_id="m-1",
        ref=OrderRef(1, V1),
        body=json.dumps({"id": 1, "updated_at": V1}),
        reexport_since=None,
        receive_count=1,
        attributes=string_attributes({Attr.ORDER_ID: "1", Attr.RUN_ID: "run-1"}),
    )


def test_a_failed_take_back_of_a_failed_mark_is_marked_later_or_alarmed() -> None:
    store = MemoryStore()
    ledger = memory_ledger(store=store)
    ledger.claim(OrderRef(1, V1), "run-1", 7200)  # the poll that put the copy on the queue

    def take_backs_fail(operation: str, updates: Sequence[Update]) -> Fault:
        take_back = any(u.condition == "marked_version = :v AND mark_token = :token" for u in updates)
        return Fault.FAIL if take_back else Fault.NONE

    store.fault = take_backs_fail
    traede = FakeTraede()
    traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)
    with ThreadPoolExecutor(2) as pool:
        forwarder = Forwarder(FakeTarget(), traede, ledger, FakeDlq(), SYSTEM, pool)
        first = forwarder.forward([copy()], lambda: 50.0)
        assert not first.results["m-1"].ok  # the copy comes back after the visibility timeout
        traede.error = None  # Traede answers again
        again = forwarder.forward([copy()], lambda: 50.0)
    alarmed = {f: getattr(s, f) for s in (first.summary, again.summary) for f in ALARMED if getattr(s, f)}
    assert traede.marked == [1] or alarmed, f"never marked, nothing alarmed: {again.summary}"
