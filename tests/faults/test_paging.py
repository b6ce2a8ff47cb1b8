"""Paging through Traede's export when the server ignores `page`, or repeats what it served."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.stack import (
    SYSTEM,
    eligible,
    emitted_metrics,
)
from traede_export.models import version_of
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("entry", [{"note": "no id at all"}, {"id": "PO-1", "updated_at": "2026-01-01 00:00:00"}])
def test_an_entry_without_an_integer_id_on_a_repeated_page_ends_the_paging(
    make_stack: MakeStack, entry: dict[str, str]
) -> None:
    # Only entries with an integer id counted as seen, so a repeated page always held something new
    # and the "page with nothing new" stop never fired: 2,000 export GETs and 2,000 ledger writes per
    # poll, and PagingStalled never counted.
    stack: LocalStack = make_stack(orders=4, paging="ignore_page", overrides={"EXPORT_PAGE_SIZE": "60"})
    assert stack.sandbox is not None
    waiting = eligible(stack)
    stack.sandbox.malformed.append(entry)
    first = stack.poll()
    assert first["enqueued"] == len(waiting) and first["invalid"] == 1 and first["pages"] == 2
    second = stack.poll()  # every order on the page is in flight; the entry was parked once
    assert second["pages"] == 2 and second["enqueued"] == 0
    assert second["paging_stalled"]


def test_an_id_of_true_is_not_taken_for_order_1(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=2, paging="all")
    assert stack.sandbox is not None
    stack.sandbox.add_orders([{"id": 1, "updated_at": "2026-01-01 00:00:00", "status": "confirmed"}])
    stack.sandbox.malformed.append({"id": True, "updated_at": "2026-01-01 00:00:00", "status": "confirmed"})
    waiting = eligible(stack)
    result = stack.poll()  # the entry comes first on the page, then order 1 of the same updated_at
    assert result["invalid"] == 1 and result["enqueued"] == len(waiting)
    assert 1 in waiting


def after_first_export_page(stack: LocalStack, change: Any) -> None:
    """Run `change` on the sandbox right after it served the first export page: Traede moving mid-run."""
    sandbox = stack.sandbox
    served = sandbox._export
    calls = 0

    def export(query: str) -> Any:
        nonlocal calls
        reply = served(query)
        calls += 1
        if calls == 1:
            change()
        return reply

    sandbox._export = export  # type: ignore[method-assign]


def test_an_edit_seen_on_a_later_page_of_the_same_poll_is_not_dropped_as_a_duplicate(make_stack: MakeStack) -> None:
    """Offset paging over a moving set: an order inserted before it pushes an order from page 0 onto
    page 1, edited meanwhile. The poll dropped the edit as "a duplicate" by id, delivered the older
    version and marked the order: Traede counts the edit as exported, the ERP never got it."""
    stack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    sandbox.server_page_size = 2
    first, moved = eligible(stack)[:2]
    edited: list[str] = []

    def change() -> None:
        sandbox.add_orders([{**sandbox.order(first), "id": 1}])  # sorts before every seeded order
        edited.append(sandbox.edit(moved))

    after_first_export_page(stack, change)
    stack.poll()
    stack.event_source().drain()

    newest = version_of(edited[0])
    assert any(key.endswith(f":{moved}:{newest}") for key in receiver.keys_by_order()[moved]), (
        "the ERP never received the edit that Traede now counts as exported"
    )
    assert moved not in sandbox.pending(SYSTEM)


def test_paging_stalled_behind_a_page_of_invalid_entries_is_reported(make_stack: MakeStack) -> None:
    """Traede ignores `page` and its one page holds only entries that are not orders: they are parked
    once and stay pending, so every poll fetches the same page and the orders behind it never move.
    PagingStalled counted only refused or in-flight orders, so this stall said nothing of starving."""
    stack = make_stack(orders=3, paging="ignore_page", overrides={"EXPORT_PAGE_SIZE": "2"})
    sandbox = stack.sandbox
    waiting = eligible(stack)
    sandbox.add_orders([{"id": i, "updated_at": "not an instant"} for i in (1, 2)])

    for _ in range(2):  # the first poll parks them, the next ones only see them again
        result = stack.poll()
        assert result["enqueued"] == 0 and result["invalid"] == 2
        assert result["paging_stalled"], "the orders behind the page starve without PagingStalled"
    assert set(waiting) <= set(sandbox.pending(SYSTEM))


def test_a_stalled_page_is_counted(make_stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=60, paging="ignore_page")
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    sandbox.server_page_size = 20
    receiver.reject_ids = set(eligible(stack))  # the ERP refuses everything the page shows
    stack.poll()
    stack.event_source().drain()
    capsys.readouterr()
    result = stack.poll()  # the same full page again, all refused: the rest is never reached
    assert result["enqueued"] == 0
    assert emitted_metrics(capsys.readouterr().out).get("PagingStalled") == 1
