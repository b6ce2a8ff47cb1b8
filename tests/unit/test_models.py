import json

import pytest

from traede_export.errors import InvalidOrder
from traede_export.models import MAX_MARK_BATCH, OrderRef, chunk, idempotency_key, version_of, whole_number
from traede_local.events import load_event


@pytest.mark.parametrize(("n", "sizes"), [(0, []), (1, [1]), (10, [10]), (11, [10, 1]), (23, [10, 10, 3])])
def test_chunk_sizes(n: int, sizes: list[int]) -> None:
    batches = list(chunk(range(n), MAX_MARK_BATCH))
    assert [len(b) for b in batches] == sizes
    assert [i for b in batches for i in b] == list(range(n))


def test_chunk_rejects_zero() -> None:
    with pytest.raises(ValueError):
        list(chunk([1], 0))


def test_parses_the_sample_order() -> None:
    ref = OrderRef.from_body(json.dumps(load_event("order")))
    assert ref.order_id == 4711
    assert ref.version == "2026-11-24T15:30:45.000000Z"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "not JSON"),
        ("{oops", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": "12", "updated_at": "2026-01-01 00:00:00"}', "integer 'id'"),
        ('{"id": true, "updated_at": "2026-01-01 00:00:00"}', "integer 'id'"),
        ('{"updated_at": "2026-01-01 00:00:00"}', "integer 'id'"),
        ('{"id": 5}', "'updated_at'"),
        ('{"id": 5, "updated_at": ""}', "'updated_at'"),
        ('{"id": 5, "updated_at": "Fri, 09 Jan 2026 10:00:00"}', "not an instant"),
        ('{"id": 5, "updated_at": "2026-01-09"}', "not an instant"),
        ('{"id": 5, "updated_at": "2026-13-09 10:00:00"}', "not an instant"),
    ],
)
def test_rejects_bodies_that_are_not_orders(body: str, reason: str) -> None:
    with pytest.raises(InvalidOrder, match=reason):
        OrderRef.from_body(body)


def test_versions_sort_in_time_order_across_formats() -> None:
    assert version_of("2026-01-02 00:00:00") > version_of("2026-01-01T23:59:59Z")
    assert version_of("2026-01-01T12:00:00+02:00") == version_of("2026-01-01 10:00:00")
    assert version_of("2026-01-01T10:00:00.5Z") > version_of("2026-01-01 10:00:00")
    for text in ("not a date", "Fri, 09 Jan 2026 10:00:00", "2026-01-09", "1767952800"):
        with pytest.raises(ValueError, match="not an ISO-8601"):
            version_of(text)


def test_idempotency_key_is_stable_per_version_and_distinct_for_reexport() -> None:
    a = OrderRef(7, "2026-01-01 10:00:00")
    same = OrderRef(7, "2026-01-01T10:00:00Z")
    newer = OrderRef(7, "2026-01-01 10:00:01")
    assert idempotency_key("erp", a) == idempotency_key("erp", same) == "traede:erp:7:2026-01-01T10:00:00.000000Z"
    assert idempotency_key("erp", a) != idempotency_key("erp", newer)
    assert idempotency_key("erp", a) != idempotency_key("erp", a, reexport_since="2026-01-01T00:00:00Z")
    assert " " not in idempotency_key("erp", a)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("42", 42),
        ("0", 0),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),  # beyond a 64-bit integer: no id or size
        ("9" * 5000, None),  # int() refuses more than 4,300 digits
        ("", None),
        (None, None),
        ("²", None),
        ("٣", None),
        ("-1", None),
        ("1.0", None),
    ],
)
def test_whole_number_reads_plain_digits_only(text: str | None, number: int | None) -> None:
    assert whole_number(text) == number


def test_version_of_pads_years_below_1000_so_text_order_is_time_order() -> None:
    assert version_of("0999-12-31T23:59:59Z") == "0999-12-31T23:59:59.000000Z"
    assert version_of("0999-12-31T23:59:59Z") < version_of("1000-01-01T00:00:00Z")
