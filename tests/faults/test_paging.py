"""Paging through Traede's export when the server ignores `page`, or repeats what it served."""

from __future__ import annotations

import pytest

from helpers.stack import eligible
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
