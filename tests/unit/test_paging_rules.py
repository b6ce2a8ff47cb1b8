"""The paging rules (`traede.walk_pages`): what one poll fetches of Traede's export."""

from __future__ import annotations

from typing import Any

from traede_export.traede import MAX_PAGES, ExportStats, walk_pages


def walk(pages: list[list[Any]], page_size: int = 2, repeat: bool = False) -> tuple[list[list[Any]], ExportStats]:
    stats = ExportStats()

    def fetch(page: int) -> list[Any]:
        if page < len(pages):
            return pages[page]
        return pages[-1] if repeat else []

    return list(walk_pages(fetch, page_size, stats, lambda: True)), stats


def order(order_id: Any, updated_at: str = "2026-01-05 10:00:00") -> dict[str, Any]:
    return {"id": order_id, "updated_at": updated_at}


def test_pages_until_an_empty_one_and_a_short_page_is_not_the_end() -> None:
    got, stats = walk([[order(1), order(2)], [order(3)], [order(4)]])
    assert got == [[order(1), order(2)], [order(3)], [order(4)]] and stats.pages == 4 and not stats.page_repeated


def test_a_page_larger_than_the_limit_means_paging_is_ignored() -> None:
    got, stats = walk([[order(1), order(2), order(3)]], repeat=True)
    assert got == [[order(1), order(2), order(3)]] and stats.pages == 1


def test_a_repeated_page_ends_the_paging_and_is_said_so() -> None:
    got, stats = walk([[order(1), order(2)]], repeat=True)
    assert got == [[order(1), order(2)]] and stats.pages == 2 and stats.page_repeated and stats.duplicates == 2


def test_an_entry_without_an_integer_id_is_seen_once_so_a_repeated_page_still_ends() -> None:
    got, stats = walk([[{"note": "no id"}, order("PO-1")]], repeat=True)
    assert got == [[{"note": "no id"}, order("PO-1")]] and stats.pages == 2 and stats.page_repeated


def test_an_id_of_true_is_no_order_1() -> None:
    got, stats = walk([[order(True), order(1)]])
    assert got == [[order(True), order(1)]] and stats.duplicates == 0


def test_an_order_served_again_with_a_newer_version_is_not_a_duplicate() -> None:
    got, stats = walk([[order(1), order(2)], [order(1, "2026-01-06 10:00:00")]])
    assert [o["updated_at"] for page in got for o in page if o["id"] == 1] == [
        "2026-01-05 10:00:00",
        "2026-01-06 10:00:00",
    ]
    assert stats.duplicates == 0


def test_the_hard_cap_stops_a_server_that_pages_forever() -> None:
    stats = ExportStats()
    pages = list(walk_pages(lambda page: [order(page)], 1, stats, lambda: True))
    assert len(pages) == MAX_PAGES and stats.stopped_early
