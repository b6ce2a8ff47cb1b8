"""A mark record whose mark failed and whose take-back failed too is either marked by the copy's
redelivery or counted under an alarmed metric (MarkRecordsStranded), also when the invocation
itself fails.

The redelivery reads such a record as a mark made (already_marked) and deletes the copy; the order
stays pending in Traede, skipped by every poll as in flight until its claim's lease (2 h) runs out.
A mark that fails with anything but a TraedeError (Traede's credentials unreadable) fails the
invocation: the handler passes the batch's outcome in and emits its metrics whether `forward`
returns or raises, so the count is not lost with the summary.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede, queued_copy
from helpers.ledger import SYSTEM, memory_ledger
from traede_export.errors import CredentialsError, TraedeError
from traede_export.forward import Forwarder
from traede_export.ledger_store import Update
from traede_export.models import OrderRef
from traede_export.settle import BatchOutcome, ForwardSummary
from traede_local.memory_store import Fault, MemoryStore

V1 = "2026-01-05T10:00:00Z"
# ForwardSummary fields whose metrics have an alarm in template.yaml.
ALARMED = ("stale", "went_backwards", "large_missing", "large_mismatch", "invalid", "stranded_marks")


def take_backs_fail(operation: str, updates: Sequence[Update]) -> Fault:
    take_back = any(u.condition == "marked_version = :v AND mark_token = :token" for u in updates)
    return Fault.FAIL if take_back else Fault.NONE


@pytest.fixture
def stranding() -> Iterator[tuple[Forwarder, FakeTraede]]:
    """A forwarder whose ledger fails every take-back of a mark record, with the copy's order claimed."""
    store = MemoryStore()
    ledger = memory_ledger(store=store)
    ledger.claim(OrderRef(1, V1), "run-1", 7200)  # the poll that put the copy on the queue
    store.fault = take_backs_fail
    traede = FakeTraede()
    with ThreadPoolExecutor(2) as pool:
        yield Forwarder(FakeTarget(), traede, ledger, FakeDlq(), SYSTEM, pool), traede


def test_a_failed_take_back_of_a_failed_mark_is_marked_later_or_alarmed(
    stranding: tuple[Forwarder, FakeTraede],
) -> None:
    forwarder, traede = stranding
    traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)
    first = forwarder.forward([queued_copy(V1)], lambda: 50.0)
    assert not first.results["m-1"].ok  # the copy comes back after the visibility timeout
    traede.error = None  # Traede answers again
    again = forwarder.forward([queued_copy(V1)], lambda: 50.0)
    alarmed = {f: getattr(s, f) for s in (first.summary, again.summary) for f in ALARMED if getattr(s, f)}
    assert traede.marked == [1] or alarmed, f"never marked, nothing alarmed: {again.summary}"


def test_a_failed_take_back_in_a_failing_invocation_is_marked_later_or_alarmed(
    stranding: tuple[Forwarder, FakeTraede],
) -> None:
    forwarder, traede = stranding
    traede.error = CredentialsError("cannot read secret 'traede': ThrottlingException")  # type: ignore[assignment]
    summaries: list[ForwardSummary] = []
    failing = BatchOutcome()  # what the handler passes, and emits as metrics even when forward raises
    with pytest.raises(CredentialsError):  # the invocation fails: the batch comes back
        forwarder.forward([queued_copy(V1)], lambda: 50.0, failing)
    summaries.append(failing.summary)
    traede.error = None  # the secret reads again
    summaries.append(forwarder.forward([queued_copy(V1)], lambda: 50.0).summary)
    stranded = sum(s.stranded_marks for s in summaries)
    assert traede.marked == [1] or stranded, f"never marked, nothing alarmed: {summaries}"
