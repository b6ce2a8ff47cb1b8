"""The benchmark's pure helpers (the benchmark itself runs with `make bench`)."""

from __future__ import annotations

import math

import pytest

from traede_local.sandbox import seed_orders
from traede_ops.bench import (
    floor_ratio,
    ideal_export_calls,
    ideal_mark_calls,
    seeded_for,
    union_seconds,
)


@pytest.mark.parametrize("pending", [1, 7, 8, 9, 100, 1000, 1234])
def test_seeded_for_gives_exactly_that_many_exportable_orders(pending: int) -> None:
    orders = seed_orders(seeded_for(pending))
    exportable = [o for o in orders if o["status"] not in ("draft", "closed")]
    assert len(exportable) == pending
    assert orders[-1]["status"] not in ("draft", "closed")  # the smallest such seed count


def test_ideal_calls() -> None:
    assert ideal_export_calls(100) == 2
    assert ideal_export_calls(10_000) == 167
    assert ideal_export_calls(0) == 1
    assert ideal_mark_calls(100) == 10
    assert ideal_mark_calls(101) == 11


def test_union_seconds_counts_overlaps_once() -> None:
    assert union_seconds([]) == 0
    assert union_seconds([(0, 1), (0.5, 2), (3, 4)]) == pytest.approx(3.0)
    assert union_seconds([(0, 10), (1, 2), (3, 4)]) == pytest.approx(10.0)


def test_floor_ratio() -> None:
    assert floor_ratio(10, 0.1, 0.125) == pytest.approx(8.0)
    assert math.isinf(floor_ratio(10, 0.1, 0.0))
