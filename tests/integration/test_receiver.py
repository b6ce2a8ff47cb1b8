"""The local receiving system records every store, and answers like an ERP would (HTTP on loopback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from traede_local.faults import ReceiverFaults
from traede_local.receiver import ReceivingSystem
from traede_local.seed import seed_orders

ORDER = seed_orders(1)[0]


def post(url: str, body: Any = ORDER, key: str | None = "key-1", **headers: str) -> requests.Response:
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["Idempotency-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url, data=data, headers=sent, timeout=5)


def test_accepts_stores_and_records(tmp_path: Path) -> None:
    store = tmp_path / "erp"
    with ReceivingSystem(store_dir=store) as erp:
        assert erp.url.endswith("/orders")
        response = post(erp.url)
        assert response.status_code == 201
        assert post(erp.url).status_code == 201  # a duplicate is accepted (and counted) by default
        assert erp.delivered_ids() == {ORDER["id"]}
        assert erp.keys_by_order() == {ORDER["id"]: {"key-1"}}
        assert erp.duplicates() == 1 and erp.attempts == 2
        delivery = erp.deliveries[0]
        assert (delivery.order_id, delivery.idempotency_key, delivery.status) == (ORDER["id"], "key-1", 201)
        assert delivery.body == ORDER and delivery.headers["Idempotency-Key"] == "key-1"
        assert json.loads((store / f"{ORDER['id']}.json").read_text()) == ORDER
        assert sorted(p.name for p in store.iterdir()) == [f"{ORDER['id']}.json"]


@pytest.mark.parametrize(
    ("body", "key"),
    [(ORDER, None), (b"{not json", "k"), ({"order_number": "PO-1"}, "k"), ({"id": "1001"}, "k"), ([1], "k")],
)
def test_bad_requests_are_400(body: Any, key: str | None) -> None:
    with ReceivingSystem() as erp:
        assert post(erp.url, body, key=key).status_code == 400
        assert erp.deliveries == []


def test_permanent_rejection_is_422() -> None:
    with ReceivingSystem(reject_ids={ORDER["id"]}) as erp:
        response = post(erp.url)
        assert response.status_code == 422 and response.json()["reason"]
        assert erp.deliveries == [] and erp.attempts == 1


def test_conflict_on_duplicate_key() -> None:
    with ReceivingSystem(conflict_on_duplicate=True) as erp:
        assert post(erp.url, key="k-1").status_code == 201
        assert post(erp.url, key="k-1").status_code == 409
        assert post(erp.url, key="k-2").status_code == 201  # a new key is a new store
        assert erp.duplicates() == 1 and erp.keys_by_order() == {ORDER["id"]: {"k-1", "k-2"}}


def test_required_headers() -> None:
    with ReceivingSystem(required_headers={"X-Api-Key": "erp-key"}, faults=ReceiverFaults(error_rate=1.0)) as erp:
        assert post(erp.url).status_code == 401  # auth is checked before any fault
        assert post(erp.url, **{"X-Api-Key": "wrong"}).status_code == 401
        assert erp.deliveries == []
        erp.faults.error_rate = 0.0
        assert post(erp.url, **{"x-api-key": "erp-key"}).status_code == 201


def test_accepted_but_502_stores_then_fails(tmp_path: Path) -> None:
    with ReceivingSystem(store_dir=tmp_path, faults=ReceiverFaults(accepted_but_502_rate=1.0)) as erp:
        assert post(erp.url).status_code == 502
        assert erp.ambiguous == 1 and erp.delivered_ids() == {ORDER["id"]}
        assert erp.deliveries[0].status == 502
        assert (tmp_path / f"{ORDER['id']}.json").exists()


@pytest.mark.parametrize(
    ("faults", "outcome"),
    [
        (ReceiverFaults(error_rate=1.0), {500, 503}),
        (ReceiverFaults(throttle_rate=1.0, retry_after=3), {429}),
        (ReceiverFaults(slow_rate=1.0, slow_seconds=0.3), requests.Timeout),
        (ReceiverFaults(drop_rate=1.0), requests.ConnectionError),
    ],
)
def test_faults_store_nothing(faults: ReceiverFaults, outcome: set[int] | type[Exception]) -> None:
    with ReceivingSystem(faults=faults) as erp:
        if isinstance(outcome, set):
            responses = [post(erp.url) for _ in range(2)]
            assert {r.status_code for r in responses} == outcome
            if outcome == {429}:
                assert responses[0].headers["Retry-After"] == "3"
        else:
            with pytest.raises(outcome):
                requests.post(erp.url, json=ORDER, headers={"Idempotency-Key": "k"}, timeout=0.1)
        assert erp.deliveries == [] and erp.attempts >= 1


def test_latency_delays_every_answer() -> None:
    with ReceivingSystem(faults=ReceiverFaults(latency=0.2)) as erp:
        response = post(erp.url)
        assert response.status_code == 201 and response.elapsed.total_seconds() >= 0.2


# ------------------------------------------------------------------------------ mapped bodies and PUT

MAPPED_KEY = f"traede:erp-1:{ORDER['id']}:2026-11-24T15:30:45.000000Z"


@pytest.mark.parametrize("body", [{"header": {"no": "PO-1"}, "lines": []}, [{"line": 1}]])
def test_mapped_mode_records_any_object_or_array_by_its_idempotency_key(tmp_path: Path, body: Any) -> None:
    with ReceivingSystem(store_dir=tmp_path, expect_order=False) as erp:
        assert post(erp.url, body, key=MAPPED_KEY).status_code == 201
        assert erp.delivered_ids() == {ORDER["id"]}
        assert erp.deliveries[0].body == body
        assert json.loads((tmp_path / f"{ORDER['id']}.json").read_text()) == body


@pytest.mark.parametrize(
    ("body", "key"),
    [("text", MAPPED_KEY), (3, MAPPED_KEY), ({"a": 1}, "key-1"), ({"a": 1}, "traede:erp-1:abc:v"), ({"a": 1}, None)],
)
def test_mapped_mode_still_refuses_bad_requests(body: Any, key: str | None) -> None:
    with ReceivingSystem(expect_order=False) as erp:
        assert post(erp.url, body, key=key).status_code == 400
        assert erp.deliveries == []


def test_mapped_mode_keeps_rejections_and_duplicate_checks() -> None:
    with ReceivingSystem(expect_order=False, reject_ids={ORDER["id"]}) as erp:
        assert post(erp.url, {"a": 1}, key=MAPPED_KEY).status_code == 422
    with ReceivingSystem(expect_order=False, conflict_on_duplicate=True) as erp:
        assert post(erp.url, {"a": 1}, key=MAPPED_KEY).status_code == 201
        assert post(erp.url, {"a": 1}, key=MAPPED_KEY).status_code == 409


def test_put_to_an_order_url_is_recorded_with_method_and_path() -> None:
    with ReceivingSystem() as erp:
        url = f"{erp.url}/{ORDER['id']}"
        response = requests.put(url, json=ORDER, headers={"Idempotency-Key": "key-1"}, timeout=5)
        assert response.status_code == 201
        (delivery,) = erp.deliveries
        assert (delivery.method, delivery.path, delivery.order_id) == ("PUT", f"/orders/{ORDER['id']}", ORDER["id"])
        assert requests.delete(url, timeout=5).status_code == 405
        assert requests.put(erp.url.replace("/orders", "/other"), json=ORDER, timeout=5).status_code == 404
