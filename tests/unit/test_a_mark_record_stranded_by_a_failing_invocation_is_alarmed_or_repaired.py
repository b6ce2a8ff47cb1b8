"""A mark record whose take-back failed is counted (MarkRecordsStranded, alarmed) or marked by the
copy's redelivery, also when the invocation itself fails.

MarkRecordsStranded is counted in `writes.stranded` and copied into the summary; the handler passes
the outcome in and emits its metrics whether `forward` returns or raises (it emitted them only when
`forward` returned). A mark call that fails with anything but
a TraedeError (Traede's credentials unreadable, an answer cut mid-body) fails the invocation: the
records are taken back, that take-back fails, and the count is lost with the summary. The
redelivery reads the record as a mark made (already_marked); the order waits for its claim's lease
(2 h) and no alarm fires.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede
from helpers.ledger import SYSTEM, memory_ledger
from traede_export.errors import CredentialsError
from traede_export.forward import Forwarder
from traede_export.ledger_store import Update
from traede_export.models import Attr, InboundOrder, OrderRef, string_attributes
from traede_export.settle import BatchOutcome, ForwardSummary
from traede_local.memory_store import Fault, MemoryStore

V1 = "2026-01-05T10:00:00Z"


def copy() -> InboundOrder:
    return InboundOrder(
        message_id="m-1",
        ref=OrderRef(1, V1),
        body=json.dumps({"id": 1, "updated_at": V1}),
        reexport_since=None,
        receive_count=1,
        attributes=string_attributes({Attr.ORDER_ID: "1", Attr.RUN_ID: "run-1"}),
    )


def test_a_failed_take_back_in_a_failing_invocation_is_marked_later_or_alarmed() -> None:
    store = MemoryStore()
    ledger = memory_ledger(store=store)
    ledger.claim(OrderRef(1, V1), "run-1", 7200)  # the poll that put the copy on the queue

    def take_backs_fail(operation: str, updates: Sequence[Update]) -> Fault:
        take_back = any(u.condition == "marked_version = :v AND mark_token = :token" for u in updates)
        return Fault.FAIL if take_back else Fault.NONE

    store.fault = take_backs_fail
    traede = FakeTraede()
    traede.error = CredentialsError("cannot read secret 'traede': ThrottlingException")  # type: ignore[assignment]
    summaries: list[ForwardSummary] = []
    with ThreadPoolExecutor(2) as pool:
        forwarder = Forwarder(FakeTarget(), traede, ledger, FakeDlq(), SYSTEM, pool)
        failing = BatchOutcome()  # what the handler passes, and emits as metrics even when forward raises
        with pytest.raises(CredentialsError):  # the invocation fails: the batch comes back
            forwarder.forward([copy()], lambda: 50.0, failing)
        summaries.append(failing.summary)
        traede.error = None  # the secret reads again
        summaries.append(forwarder.forward([copy()], lambda: 50.0).summary)
    stranded = sum(s.stranded_marks for s in summaries)
    assert traede.marked == [1] or stranded, f"never marked, nothing alarmed: {summaries}"
