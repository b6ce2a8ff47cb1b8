"""The plan: what the copies of one order in a forwarder batch do, given its entry in the ledger."""

from __future__ import annotations

from pathlib import Path

from helpers.fakes import queued_copy
from traede_export.models import InboundOrder, OrderRef
from traede_export.protocol import LedgerEntry, Step, plan, state_table

SYSTEM = "erp"
T1, T2 = "2026-01-05 10:00:00", "2026-01-06 10:00:00"
V1, V2 = OrderRef(1, T1).version, OrderRef(1, T2).version


def copy(updated_at: str, run_id: str = "run-1", reexport_since: str | None = None, n: int = 0) -> InboundOrder:
    message_id = f"m-{updated_at}-{run_id}-{n}"
    return queued_copy(updated_at, message_id=message_id, run_id=run_id, reexport_since=reexport_since)


def test_a_new_version_is_delivered_and_older_copies_in_the_batch_are_superseded() -> None:
    p = plan([copy(T1), copy(T2), copy(T2, n=1)], None, SYSTEM)
    assert p.step is Step.DELIVER and p.send is not None and p.send.ref.version == V2
    assert [c.ref.version for c in p.older] == [V1] and len(p.current) == 2


def test_a_version_older_than_one_claimed_is_superseded_even_if_nothing_was_delivered() -> None:
    # A redelivered v1 that arrives after v2 was claimed must not reach the ERP: it would briefly
    # take the ERP back to older content.
    assert plan([copy(T1)], LedgerEntry(1, enqueued_version=V2), SYSTEM).step is Step.SUPERSEDED


def test_a_version_older_than_one_delivered_or_marked_is_superseded() -> None:
    assert plan([copy(T1)], LedgerEntry(1, delivered_version=V2), SYSTEM).step is Step.SUPERSEDED
    assert plan([copy(T1)], LedgerEntry(1, marked_version=V2), SYSTEM).step is Step.SUPERSEDED


def test_traede_listing_an_older_version_than_delivered_went_backwards() -> None:
    entry = LedgerEntry(1, enqueued_version=V1, run_id="run-9", delivered_version=V2)
    assert plan([copy(T1, run_id="run-9")], entry, SYSTEM).step is Step.WENT_BACKWARDS
    assert plan([copy(T1, run_id="other")], entry, SYSTEM).step is Step.SUPERSEDED  # a stale copy, not Traede


def test_a_delivered_version_is_only_marked_and_a_marked_one_does_nothing() -> None:
    delivered = LedgerEntry(1, delivered_version=V1, delivered_ms=10)
    assert plan([copy(T1)], delivered, SYSTEM).step is Step.MARK
    marked = LedgerEntry(1, delivered_version=V1, delivered_ms=10, marked_version=V1, marked_ms=20)
    assert plan([copy(T1)], marked, SYSTEM).step is Step.ALREADY_MARKED


def test_a_version_marked_then_fetched_again_by_a_poll_is_marked_again() -> None:
    entry = LedgerEntry(
        1, enqueued_version=V1, enqueued_ms=30, run_id="run-2", delivered_version=V1, delivered_ms=10,
        marked_version=V1, marked_ms=20,
    )  # fmt: skip
    assert plan([copy(T1, run_id="run-2")], entry, SYSTEM).step is Step.MARK
    assert plan([copy(T1, run_id="run-1")], entry, SYSTEM).step is Step.ALREADY_MARKED  # a replayed copy


def test_a_mark_known_without_its_delivery_record_counts_as_arrived() -> None:
    assert plan([copy(T1)], LedgerEntry(1, marked_version=V1, marked_ms=5), SYSTEM).step is Step.ALREADY_MARKED


def test_a_reexport_posts_again_only_what_was_delivered_before_its_instant() -> None:
    since = "2026-02-01T00:00:00Z"
    before = LedgerEntry(1, delivered_version=V1, delivered_key="k", delivered_ms=1_700_000_000_000)
    after = LedgerEntry(1, delivered_version=V1, delivered_key="k", delivered_ms=1_900_000_000_000)
    assert plan([copy(T1, reexport_since=since)], before, SYSTEM).step is Step.DELIVER
    assert plan([copy(T1, reexport_since=since)], after, SYSTEM).step is Step.MARK


def test_a_scheduled_copy_is_sent_before_a_reexport_copy_of_the_same_version() -> None:
    p = plan([copy(T1, reexport_since="2026-02-01T00:00:00Z"), copy(T1, n=1)], None, SYSTEM)
    assert p.send is not None and p.send.reexport_since is None


def test_the_state_table_in_the_docs_is_the_one_the_code_runs() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    shown = doc.split("<!-- state-table -->\n", 1)[1].split("\n<!-- /state-table -->", 1)[0]
    assert shown == state_table(), "docs/architecture.md: paste protocol.state_table() between the markers"
