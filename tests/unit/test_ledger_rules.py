"""Each row of the protocol's state table, on the real ledger over an in-memory store.

The store evaluates the guards the ledger sends to DynamoDB (tests/integration/test_ledger.py
runs the same writes on DynamoDB Local and compares).
"""

from __future__ import annotations

import pytest

from helpers.ledger import entry, seed
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef
from traede_export.protocol import LedgerEntry, State, state_of
from traede_local.memory_store import Fault, MemoryStore

OLD, NEW = "2026-01-01 00:00:00", "2026-01-02 00:00:00"
V_OLD, V_NEW = OrderRef(1, OLD).version, OrderRef(1, NEW).version


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ledger(store: MemoryStore, clock: Clock) -> ExportLedger:
    return ExportLedger(store, "erp", clock)


# ------------------------------------------------------------------------------------ claim


def test_a_claim_skips_a_version_in_flight_and_takes_a_newer_one(ledger: ExportLedger) -> None:
    assert ledger.claim(OrderRef(7, OLD), "run-1", 600)
    assert not ledger.claim(OrderRef(7, OLD), "run-2", 600)  # in flight
    assert ledger.claim(OrderRef(7, NEW), "run-3", 600)  # a new version goes through
    assert not ledger.claim(OrderRef(7, OLD), "run-4", 600)  # an older one does not, while the lease holds
    assert ledger.claim(OrderRef(7, NEW), "run-5", 600, force=True)  # a re-export does
    assert entry(ledger, 7).run_id == "run-5"


def test_a_claim_whose_lease_ran_out_is_taken_again(ledger: ExportLedger, clock: Clock) -> None:
    assert ledger.claim(OrderRef(8, OLD), "run-1", 600)
    clock.now += 600
    assert not ledger.claim(OrderRef(8, OLD), "run-2", 600)  # the lease's last second still holds
    clock.now += 1
    assert ledger.claim(OrderRef(8, OLD), "run-2", 600)


def test_a_refused_version_is_not_claimed_but_a_new_one_and_a_reexport_are(ledger: ExportLedger) -> None:
    assert ledger.record_rejection(OrderRef(9, OLD), "HTTP 422")
    assert not ledger.claim(OrderRef(9, OLD), "run-1", 600)
    assert ledger.claim(OrderRef(9, NEW), "run-2", 600)
    assert ledger.record_rejection(OrderRef(10, OLD), "HTTP 422")
    assert ledger.claim(OrderRef(10, OLD), "reexport", 600, force=True)


def test_claim_many_answers_as_one_claim_each_would(ledger: ExportLedger) -> None:
    assert ledger.claim(OrderRef(3, OLD), "earlier", 600)
    refs = [OrderRef(i, OLD) for i in range(5)] + [OrderRef(4, OLD)]  # 4 twice: the second is in flight
    assert ledger.claim_many(refs, "run-1", 600) == [True, True, True, False, True, False]


def test_a_claim_whose_answer_was_lost_is_read_back_as_claimed(store: MemoryStore, ledger: ExportLedger) -> None:
    store.fault = lambda operation, updates: Fault.LOST if operation != "BatchGetItem" else Fault.NONE
    assert ledger.claim_many([OrderRef(1, OLD), OrderRef(2, OLD)], "run-1", 600) == [True, True]
    store.fault = lambda operation, updates: Fault.RESENT if operation != "BatchGetItem" else Fault.NONE
    assert ledger.claim_many([OrderRef(3, OLD)], "run-1", 600) == [True]  # botocore's second try finds its own


def test_a_claim_that_did_not_take_effect_keeps_its_error(store: MemoryStore, ledger: ExportLedger) -> None:
    store.fault = lambda operation, updates: Fault.FAIL if operation != "BatchGetItem" else Fault.NONE
    with pytest.raises(Exception, match="InternalServerError"):
        ledger.claim_many([OrderRef(1, OLD), OrderRef(2, OLD)], "run-1", 600)


def test_release_gives_back_only_the_runs_own_lease(ledger: ExportLedger) -> None:
    assert ledger.claim(OrderRef(7, OLD), "run-1", 600)
    assert not ledger.release(OrderRef(7, OLD), "someone-else")
    assert not ledger.release(OrderRef(7, NEW), "run-1")  # another version
    assert ledger.release(OrderRef(7, OLD), "run-1")
    assert ledger.claim(OrderRef(7, OLD), "run-2", 600)


# --------------------------------------------------------------------------- delivery lease


def test_a_live_delivery_lease_is_never_joined_not_even_under_the_same_key(ledger: ExportLedger) -> None:
    lease = [(OrderRef(1, OLD), "key-1")]
    assert ledger.begin_deliveries(lease, 60, "batch-a") == [True]
    assert ledger.begin_deliveries(lease, 60, "batch-b") == [False]  # a second live copy waits
    assert ledger.begin_deliveries(lease, 60, "batch-a") == [True]  # the same write's second try
    assert ledger.begin_deliveries([(OrderRef(1, NEW), "key-1-new")], 60, "batch-c") == [False]


def test_a_delivery_lease_that_ran_out_is_taken_by_the_next_copy(ledger: ExportLedger, clock: Clock) -> None:
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-a") == [True]
    clock.now += 61
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-b") == [True]
    assert entry(ledger, 1).delivering_token == "batch-b"


def test_a_delivery_lease_refuses_a_version_older_than_one_claimed_delivered_or_marked(
    ledger: ExportLedger, clock: Clock
) -> None:
    assert ledger.claim(OrderRef(1, NEW), "run", 600)
    assert ledger.record_deliveries([(OrderRef(2, NEW), "key-2")]) == [True]
    assert ledger.record_marks([OrderRef(3, NEW)], "batch-x", {}) == [True]
    leases = [(OrderRef(i, OLD), f"key-{i}") for i in (1, 2, 3, 4)]
    assert ledger.begin_deliveries(leases, 60, "batch-a") == [False, False, False, True]
    delivered_ms = int(clock.now * 1000)
    # The same version again: only a re-export whose instant is after that delivery.
    assert ledger.begin_deliveries([(OrderRef(2, NEW), "key-2:reexport:a", delivered_ms)], 60, "batch-b") == [False]
    assert ledger.begin_deliveries([(OrderRef(2, NEW), "key-2:reexport:b", delivered_ms + 1)], 60, "batch-c") == [True]


def test_a_delivery_lease_refuses_a_version_older_than_one_sent_without_an_answer(ledger: ExportLedger) -> None:
    # v2's POST got no answer (it may be in the ERP) and its lease ended: v1 must not follow it.
    assert ledger.begin_deliveries([(OrderRef(1, NEW), "key-new")], 60, "batch-a") == [True]
    assert ledger.end_delivery(OrderRef(1, NEW), "batch-a")
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-old")], 60, "batch-b") == [False]
    assert entry(ledger, 1).sent_version == V_NEW


def test_a_delivery_lease_refuses_a_key_already_recorded_as_delivered(ledger: ExportLedger) -> None:
    # Two copies read the ledger before either POSTed; the first delivered and recorded it. The
    # second, planned on its stale read, must not POST again.
    assert ledger.record_deliveries([(OrderRef(1, OLD), "key-1")]) == [True]
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-b") == [False]


def test_end_delivery_gives_back_only_its_own_lease(ledger: ExportLedger) -> None:
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-a") == [True]
    assert not ledger.end_delivery(OrderRef(1, OLD), "batch-b")
    assert ledger.end_delivery(OrderRef(1, OLD), "batch-a")
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-b") == [True]


# ---------------------------------------------------------------------------------- records


def test_a_delivery_record_never_goes_backwards_and_may_repeat_its_version(ledger: ExportLedger) -> None:
    assert ledger.record_deliveries([(OrderRef(7, NEW), "key-new")]) == [True]
    assert ledger.record_deliveries([(OrderRef(7, NEW), "key-new")]) == [True]  # a second try is no stale delivery
    assert ledger.record_deliveries([(OrderRef(7, OLD), "key-old")]) == [False]
    e = entry(ledger, 7)
    assert (e.delivered_version, e.delivered_key) == (V_NEW, "key-new")


def test_a_delivery_record_ends_the_lease_and_clears_a_refusal(ledger: ExportLedger) -> None:
    assert ledger.record_rejection(OrderRef(1, OLD), "HTTP 422")
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-a") == [True]
    assert ledger.record_deliveries([(OrderRef(1, OLD), "key-1")], "batch-a") == [True]
    e = entry(ledger, 1)
    assert (e.delivering_token, e.rejected_version, e.delivered_version) == ("", "", V_OLD)


def test_a_rejection_ends_the_lease_and_forgetting_it_needs_the_same_version(ledger: ExportLedger) -> None:
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1")], 60, "batch-a") == [True]
    assert ledger.record_rejection(OrderRef(1, OLD), "HTTP 422: " + "x" * 900, "batch-a")
    e = entry(ledger, 1)
    assert (e.rejected_version, e.delivering_token) == (V_OLD, "")
    assert not ledger.forget_rejection(OrderRef(1, NEW))
    assert ledger.forget_rejection(OrderRef(1, OLD))
    assert entry(ledger, 1).rejected_version == ""


# ------------------------------------------------------------------------------------ marks


def test_mark_records_never_go_backwards_nor_pass_a_newer_claim_or_delivery(ledger: ExportLedger) -> None:
    assert ledger.record_marks([OrderRef(7, NEW)], "b1", {}) == [True]
    assert ledger.record_deliveries([(OrderRef(9, NEW), "key-9-new")]) == [True]
    assert ledger.claim(OrderRef(10, NEW), "run", 600)
    refs = [OrderRef(i, OLD) for i in range(5, 12)]
    assert ledger.record_marks(refs, "b2", {}) == [i not in (7, 9, 10) for i in range(5, 12)]
    assert entry(ledger, 7).marked_version == V_NEW
    assert entry(ledger, 9).marked_version == entry(ledger, 10).marked_version == ""


def test_a_mark_record_refuses_a_version_another_copy_marked_since_the_batch_read_it(ledger: ExportLedger) -> None:
    assert ledger.record_marks([OrderRef(1, OLD)], "a", {}) == [True]  # marked before the batch read it
    seen = {1: "a"}
    assert ledger.record_marks([OrderRef(1, OLD)], "b", seen) == [True]  # unchanged since read: marked again
    assert ledger.record_marks([OrderRef(1, OLD)], "c", seen) == [False]  # b marked it since c read it
    assert ledger.record_marks([OrderRef(1, OLD)], "b", seen) == [True]  # b's own second try
    assert ledger.record_marks([OrderRef(2, OLD)], "d", {}) == [True]
    assert ledger.record_marks([OrderRef(2, OLD)], "e", {}) == [False]  # read unmarked, marked since


def test_two_mark_records_in_the_same_millisecond_are_told_apart(ledger: ExportLedger) -> None:
    # The clock does not move: only the tokens tell the two batches apart.
    assert ledger.record_deliveries([(OrderRef(1, OLD), "key")]) == [True]
    assert ledger.record_marks([OrderRef(1, OLD)], "a", {}) == [True]
    assert ledger.record_marks([OrderRef(1, OLD)], "b", {}) == [False]
    assert ledger.undo_marks([(OrderRef(1, OLD), None)], "b") == [False]
    assert entry(ledger, 1).mark_token == "a"


def test_finish_deliveries_records_each_delivery_with_its_mark_and_the_mark_only_orders(
    ledger: ExportLedger, clock: Clock
) -> None:
    assert ledger.record_deliveries([(OrderRef(2, OLD), "key-2")]) == [True]
    assert ledger.record_deliveries([(OrderRef(3, NEW), "key-3-new")]) == [True]
    clock.now += 1
    answers = ledger.finish_deliveries(
        [(OrderRef(1, OLD), "key-1"), (OrderRef(3, OLD), "key-3")], [OrderRef(2, OLD)], "b", {}
    )
    assert answers == [True, False, True]
    one, two = entry(ledger, 1), entry(ledger, 2)
    assert (one.delivered_version, one.marked_version, one.mark_token) == (V_OLD, V_OLD, "b")
    assert one.delivered_ms == one.marked_ms == int(clock.now * 1000)
    assert (two.marked_version, two.mark_token) == (V_OLD, "b")
    assert entry(ledger, 3).marked_version == ""


def test_undo_marks_restores_the_mark_before_and_only_its_own(ledger: ExportLedger) -> None:
    assert ledger.record_marks([OrderRef(1, OLD), OrderRef(3, OLD)], "first", {}) == [True, True]
    before = ledger.get_many([1, 2, 3])
    assert ledger.record_marks([OrderRef(1, NEW), OrderRef(2, NEW), OrderRef(3, NEW)], "mine", {}) == [True] * 3
    assert ledger.record_marks([OrderRef(3, NEW)], "other", {3: "mine"}) == [True]  # another copy marked 3 since
    undo = [(OrderRef(i, NEW), before.get(i)) for i in (1, 2, 3)]
    assert ledger.undo_marks(undo, "mine") == [True, True, False]
    after = ledger.get_many([1, 2, 3])
    assert (after[1].marked_version, after[1].mark_token) == (V_OLD, "first")
    assert 2 not in after or (after[2].marked_version, after[2].mark_token) == ("", "")
    assert (after[3].marked_version, after[3].mark_token) == (V_NEW, "other")


def test_a_mark_record_of_an_older_release_is_given_a_token_and_can_be_marked_again(ledger: ExportLedger) -> None:
    seed(ledger, LedgerEntry(1, delivered_version=V_OLD, marked_version=V_OLD, marked_ms=5))
    read = ledger.get_many([1])[1]
    assert read.mark_token == "legacy-5" == entry(ledger, 1).mark_token
    assert ledger.record_marks([OrderRef(1, OLD)], "b", {1: read.mark_token}) == [True]


# ------------------------------------------------------------------------------- the states


@pytest.mark.parametrize(
    ("entry_", "state"),
    [
        (None, State.UNSEEN),
        (LedgerEntry(1, enqueued_version=V_OLD, lease_until=100), State.CLAIMED),
        (LedgerEntry(1, enqueued_version=V_OLD, lease_until=99), State.UNSEEN),
        (LedgerEntry(1, delivering_version=V_OLD, delivering_until=100), State.DELIVERING),
        (LedgerEntry(1, delivered_version=V_OLD, delivering_version=V_OLD, delivering_until=100), State.DELIVERED),
        (LedgerEntry(1, delivered_version=V_OLD, marked_version=V_OLD), State.MARKED),
        (LedgerEntry(1, rejected_version=V_OLD), State.REFUSED),
        (LedgerEntry(1, enqueued_version=V_NEW), State.SUPERSEDED),
        (LedgerEntry(1, marked_version=V_NEW), State.SUPERSEDED),
    ],
)
def test_the_state_of_a_version(entry_: LedgerEntry | None, state: State) -> None:
    assert state_of(entry_, V_OLD, now=100) is state


# ------------------------------------------------------------------------------------ reads


def test_an_operators_read_writes_nothing_even_for_an_older_releases_item(
    ledger: ExportLedger, store: MemoryStore
) -> None:
    # An item as an older release left it: a version stored as raw text, a mark record without a token.
    store.items["order#erp#5"] = {
        "pk": {"S": "order#erp#5"},
        "enqueued_version": {"S": "2026-01-01 00:00:00"},
        "marked_version": {"S": V_OLD},
        "marked_ms": {"N": "17"},
    }
    found = ledger.read([5])[5]
    assert store.writes == []  # `order` and `pending` only look: the operator's policy has no UpdateItem
    assert (found.enqueued_version, found.mark_token) == ("", "legacy-17")  # as `get_many` would read it
    assert ledger.get_many([5])[5] == found and store.writes  # the forwarder's read repairs it
