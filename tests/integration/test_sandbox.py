"""The local Traede sandbox speaks the Export API as documented (talks HTTP on loopback)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from traede_local.faults import Faults
from traede_local.sandbox import EXPORT_PATH, MARK_PATH, TraedeSandbox
from traede_local.seed import seed_orders

TOKEN = "test-access-token"
APP_KEY = "test-app-key"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Traede-App-Key": APP_KEY}
ORDERS = seed_orders(30)


@pytest.fixture
def sandbox() -> Iterator[TraedeSandbox]:
    with TraedeSandbox(ORDERS, TOKEN, APP_KEY) as box:
        yield box


def export(box: TraedeSandbox, params: Any = None, **kw: Any) -> requests.Response:
    base: list[tuple[str, str]] = [("system_id", "erp"), ("limit", "60")]
    if isinstance(params, dict):
        params = list(params.items())
    return requests.get(box.url + EXPORT_PATH, params=base + (params or []), headers=AUTH, timeout=5, **kw)


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["production_orders"]]


def mark(
    box: TraedeSandbox, order_ids: list[int], system_id: str = "erp", note: str | None = None
) -> requests.Response:
    items = [{"production_order_id": i, "system_id": system_id, **({"note": note} if note else {})} for i in order_ids]
    return requests.post(box.url + MARK_PATH, json={"production_orders": items}, headers=AUTH, timeout=5)


def open_ids() -> list[int]:
    return [o["id"] for o in ORDERS if o["status"] not in ("draft", "closed")]


def test_seed_orders_are_deterministic_and_plausible() -> None:
    assert seed_orders(5, seed=3) == seed_orders(5, seed=3)
    assert seed_orders(5, seed=3) != seed_orders(5, seed=4)
    statuses = {o["status"] for o in ORDERS}
    assert {"draft", "closed", "confirmed", "in_production"} <= statuses
    first = ORDERS[0]
    assert first["id"] == 1001 and first["order_number"] == "PO-1001"
    assert re.fullmatch(r"2026-\d\d-\d\d \d\d:\d\d:\d\d", first["updated_at"])
    assert all(1 <= len(o["lines"]) <= 4 for o in ORDERS)
    text = json.dumps(ORDERS).lower()
    assert not re.search(r"secret|token|password|[0-9a-f]{24}", text)


def test_auth_needs_both_headers(sandbox: TraedeSandbox) -> None:
    url = sandbox.url + EXPORT_PATH + "?system_id=erp"
    for headers in ({}, {"Authorization": AUTH["Authorization"]}, {"X-Traede-App-Key": APP_KEY}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert "error" in response.json()
    bad = {**AUTH, "Authorization": "Bearer wrong"}
    assert requests.get(url, headers=bad, timeout=5).status_code == 401
    assert requests.post(sandbox.url + MARK_PATH, json={}, timeout=5).status_code == 401
    # the query-string token is refused: credentials belong in headers only
    leaky = f"{url}&access_token={TOKEN}"
    assert requests.get(leaky, headers={"X-Traede-App-Key": APP_KEY}, timeout=5).status_code == 401
    assert sandbox.mark_attempts == 0 and sandbox.export_calls == 0


def test_system_id_required_and_default_excludes_draft_and_closed(sandbox: TraedeSandbox) -> None:
    response = requests.get(sandbox.url + EXPORT_PATH, headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert "system_id" in response.json()["message"]
    assert ids(export(sandbox)) == open_ids()


def test_include_open_and_closed(sandbox: TraedeSandbox) -> None:
    by_status = {o["id"]: o["status"] for o in ORDERS}
    with_open = ids(export(sandbox, {"include_open": "1"}))
    assert {by_status[i] for i in with_open} == {"draft", "confirmed", "in_production"}
    with_closed = ids(export(sandbox, {"include_closed": "1"}))
    assert {by_status[i] for i in with_closed} == {"closed", "confirmed", "in_production"}
    assert ids(export(sandbox, {"include_open": "1", "include_closed": "1"})) == sorted(by_status)


def test_mark_is_per_system_and_edit_makes_pending_again(sandbox: TraedeSandbox) -> None:
    first = open_ids()[:3]
    assert mark(sandbox, first, note="imported as ERP-1").json() == {"ok": True}
    assert mark(sandbox, first).status_code == 200  # idempotent
    assert not set(first) & set(ids(export(sandbox)))
    other = requests.get(sandbox.url + EXPORT_PATH, params={"system_id": "wms"}, headers=AUTH, timeout=5)
    assert set(first) <= set(ids(other))
    assert sandbox.exported("erp") == set(first) and sandbox.exported("wms") == set()
    assert sandbox.mark_calls == [first, first] and sandbox.notes[first[0]] == "imported as ERP-1"

    before = sandbox.order(first[0])["updated_at"]
    after = sandbox.edit(first[0])
    assert after > before
    assert first[0] in ids(export(sandbox))
    assert first[1] not in ids(export(sandbox))
    mark(sandbox, [first[0]])  # marking right after the edit clears it again, even within one second
    assert first[0] not in ids(export(sandbox))


def test_not_exported_since_re_exports_older_exports(sandbox: TraedeSandbox) -> None:
    first = open_ids()[:2]
    mark(sandbox, first)
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert not set(first) & set(ids(export(sandbox, {"not_exported_since": past})))
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert set(first) <= set(ids(export(sandbox, {"not_exported_since": future})))
    assert export(sandbox, {"not_exported_since": "yesterday"}).status_code == 400


def test_includes_strip_nested_resources(sandbox: TraedeSandbox) -> None:
    def first(includes: list[str]) -> dict[str, Any]:
        response = export(sandbox, [("includes[]", name) for name in includes])
        order: dict[str, Any] = response.json()["production_orders"][0]
        return order

    bare = first([])
    assert not {"lines", "supplier", "deliveryNotes", "salesOrders"} & set(bare)
    assert {"id", "created_at", "updated_at", "status"} <= set(bare)
    lines_only = first(["lines"])
    assert lines_only["lines"] and all("product" not in ln and "variant" not in ln for ln in lines_only["lines"])
    full = first(["lines.product", "lines.variant", "supplier", "deliveryNotes"])
    assert all("product" in ln and "variant" in ln for ln in full["lines"])
    assert full["supplier"]["name"] and full["deliveryNotes"] == []
    with_so = [o for o in ORDERS if o["salesOrders"]]
    assert with_so
    response = export(sandbox, [("includes[]", "salesOrders"), ("include_open", "1"), ("include_closed", "1")])
    so = next(o for o in response.json()["production_orders"] if o["id"] == with_so[0]["id"])["salesOrders"][0]
    assert not {"lines", "delivery", "shop"} & set(so)
    assert export(sandbox, [("includes[]", "invoices")]).status_code == 400
    assert "lines" in ORDERS[0]  # stripping never touches the stored orders


def group(i: int, filters: list[tuple[str, str, str | list[str], bool]], any_of: bool = False) -> list[tuple[str, str]]:
    pairs = [(f"filter_groups[{i}][or]", "1" if any_of else "0")]
    for j, (key, op, value, negate) in enumerate(filters):
        p = f"filter_groups[{i}][filters][{j}]"
        pairs += [(f"{p}[key]", key), (f"{p}[operator]", op), (f"{p}[not]", "1" if negate else "0")]
        pairs += [(f"{p}[value][]", v) for v in value] if isinstance(value, list) else [(f"{p}[value]", value)]
    return pairs


def test_filter_groups(sandbox: TraedeSandbox) -> None:
    everything = [("include_open", "1"), ("include_closed", "1")]
    cutoff = sorted(o["updated_at"] for o in ORDERS)[15]
    expected = sorted(o["id"] for o in ORDERS if o["updated_at"] >= cutoff)
    assert ids(export(sandbox, everything + group(0, [("updated_at", "gte", cutoff, False)]))) == expected
    iso = cutoff.replace(" ", "T") + "Z"  # ISO-8601 values compare in Traede's form
    assert ids(export(sandbox, everything + group(0, [("updated_at", "gte", iso, False)]))) == expected
    negated = ids(export(sandbox, everything + group(0, [("updated_at", "gte", cutoff, True)])))
    assert sorted(negated + expected) == sorted(o["id"] for o in ORDERS)

    assert ids(export(sandbox, everything + group(0, [("id", "in", ["1002", "1005", "9999"], False)]))) == [1002, 1005]
    assert ids(export(sandbox, everything + group(0, [("id", "bt", ["1003", "1006"], False)]))) == [
        1003,
        1004,
        1005,
        1006,
    ]
    either = group(0, [("id", "eq", "1001", False), ("order_number", "ew", "1010", False)], any_of=True)
    assert ids(export(sandbox, everything + either)) == [1001, 1010]
    both = group(0, [("id", "eq", "1001", False), ("order_number", "ew", "1010", False)])
    assert ids(export(sandbox, everything + both)) == []
    anded = group(0, [("order_number", "sw", "po-100", False)]) + group(1, [("id", "lt", "1004", False)])
    assert ids(export(sandbox, everything + anded)) == [1001, 1002, 1003]
    assert ids(export(sandbox, everything + group(0, [("order_number", "ct", "-102", False)]))) == list(
        range(1020, 1030)
    )


@pytest.mark.parametrize(
    "pairs",
    [
        [("filter_groups[0][filters][0][key]", "id"), ("filter_groups[0][filters][0][operator]", "like")],
        group(0, [("id", "bt", ["1"], False)]),
        group(0, [("id", "in", "1001", False)]),
        [("filter_groups[0][filters][0]", "x")],
        [("filter_groups[0][filters][1][key]", "id")],
        [("filter_groups", "updated_at")],
    ],
)
def test_malformed_filters_are_400(sandbox: TraedeSandbox, pairs: list[tuple[str, str]]) -> None:
    response = export(sandbox, pairs)
    assert response.status_code == 400 and response.json()["message"]


def test_paging_modes() -> None:
    expected = open_ids()
    with TraedeSandbox(ORDERS, TOKEN, APP_KEY, paging="paged") as box:
        pages = [ids(export(box, [("limit", "7"), ("page", str(p))])) for p in range(5)]
        assert [i for page in pages for i in page] == expected
        assert len(pages[0]) == 7
        default = requests.get(box.url + EXPORT_PATH, params={"system_id": "erp"}, headers=AUTH, timeout=5)
        assert len(ids(default)) == 20
        assert export(box, [("limit", "61")]).status_code == 400
    with TraedeSandbox(ORDERS, TOKEN, APP_KEY, paging="all") as box:
        assert ids(export(box, [("limit", "5"), ("page", "3")])) == expected
    with TraedeSandbox(ORDERS, TOKEN, APP_KEY, paging="ignore_page") as box:
        assert ids(export(box, [("limit", "5"), ("page", "3")])) == expected[:5]


def test_mark_validation(sandbox: TraedeSandbox) -> None:
    assert mark(sandbox, open_ids()[:11]).status_code == 422
    assert mark(sandbox, [1001, 424242]).status_code == 404
    assert sandbox.exported("erp") == set()  # nothing marked on 404
    url = sandbox.url + MARK_PATH
    for body in (b"not json", b"{}", b'{"production_orders": [{"production_order_id": "1001", "system_id": "erp"}]}'):
        assert requests.post(url, data=body, headers=AUTH, timeout=5).status_code == 400
    assert sandbox.mark_calls == [] and sandbox.mark_attempts == 5


def test_requests_log_keeps_credentials_out_of_urls(sandbox: TraedeSandbox) -> None:
    export(sandbox, {"include_open": "1"})
    mark(sandbox, [1001])
    log = sandbox.requests_log
    assert [(e["method"], e["path"], e["status"]) for e in log] == [("GET", EXPORT_PATH, 200), ("POST", MARK_PATH, 200)]
    assert "include_open=1" in log[0]["query"]
    assert all(TOKEN not in e["path"] + e["query"] and APP_KEY not in e["query"] for e in log)
    assert log[0]["headers"]["X-Traede-App-Key"] == APP_KEY


@pytest.mark.parametrize(
    ("faults", "status"),
    [
        (Faults(error_rate=1.0), {500, 503}),
        (Faults(throttle_rate=1.0, retry_after=2), {429}),
        (Faults(slow_rate=1.0, slow_seconds=0.3), requests.Timeout),
        (Faults(drop_rate=1.0), requests.ConnectionError),
    ],
)
def test_faults_happen_and_do_no_work(faults: Faults, status: set[int] | type[Exception]) -> None:
    with TraedeSandbox(ORDERS, TOKEN, APP_KEY, faults=faults) as box:
        if not isinstance(status, set):
            with pytest.raises(status):
                requests.post(
                    box.url + MARK_PATH,
                    json={"production_orders": [{"production_order_id": 1001, "system_id": "erp"}]},
                    headers=AUTH,
                    timeout=0.1,
                )
        else:
            seen = {mark(box, [1001]).status_code for _ in range(4)}
            assert seen == status
            response = export(box)
            assert response.status_code in status
            if 429 in status:
                assert response.headers["Retry-After"] == "2"
        assert box.exported("erp") == set() and box.mark_calls == [] and box.export_calls == 0
        assert box.mark_attempts >= 1
        # failed auth is never faulted
        assert requests.get(box.url + EXPORT_PATH, timeout=5).status_code == 401


def test_fault_picks_are_deterministic_per_seed() -> None:
    def picks(seed: int) -> list[str | None]:
        faults = Faults(error_rate=0.2, throttle_rate=0.2, drop_rate=0.1, seed=seed)
        return [faults.pick() for _ in range(50)]

    assert picks(1) == picks(1)
    assert picks(1) != picks(2)
    assert {"error", "throttle", "drop", None} == set(picks(1))
