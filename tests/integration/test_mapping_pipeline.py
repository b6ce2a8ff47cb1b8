"""Orders in the ERP's shape, end to end: the real handlers, moto, the sandbox and the receiving system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from traede_export.errors import ConfigError, MappingError
from traede_export.http import build_session
from traede_export.target import Outcome, RequestShape, TargetClient
from traede_local.events import load_event
from traede_local.local_stack import LocalStack, MakeStack
from traede_local.receiver import ReceivingSystem

SYSTEM = "local-erp"


def drain(stack: LocalStack) -> Any:
    return stack.event_source().drain(max_seconds=120)


def order_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS event shaped like events/sqs-order.json, one record per body."""
    template = load_event("sqs-order")["Records"][0]
    return {"Records": [{**template, "messageId": f"msg-{i}", "body": b} for i, b in enumerate(bodies)]}


def test_pipeline_with_the_erp_mapping_stores_purchase_orders(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=30, mapping="erp-purchase-order.jsonata")
    receiver, sandbox = stack.receiver, stack.sandbox
    pending = set(sandbox.pending(SYSTEM))
    stack.poll()
    drain(stack)

    assert receiver.delivered_ids() == sandbox.exported(SYSTEM) == pending
    assert receiver.duplicates() == 0 and stack.dlq_messages() == []
    one_line = 0
    for delivery in receiver.deliveries:
        order = sandbox.order(delivery.order_id)
        body = delivery.body
        header = body["header"]
        assert header["externalId"] == str(order["id"]) and header["externalDocumentNo"] == order["order_number"]
        assert header["source"]["idempotencyKey"] == delivery.idempotency_key
        assert header["source"]["systemId"] == SYSTEM
        assert body["supplier"]["vendorNo"] == str(order["supplier"]["id"])
        assert isinstance(body["lines"], list)  # also for one-line orders
        assert [line["itemNo"] for line in body["lines"]] == [line["sku"] for line in order["lines"]]
        expected_total = round(sum(line["quantity"] * line["unit_cost"] for line in order["lines"]), 2)
        assert header["totalAmount"] == pytest.approx(expected_total)
        assert "id" not in body and "updated_at" not in body  # the ERP's shape, not Traede's
        one_line += len(order["lines"]) == 1
    assert one_line > 0  # the seeded orders include the one-line case


def test_put_to_a_url_with_a_placeholder(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=8, parameters={"TargetMethod": "PUT"}, target_path="/{id}")
    stack.poll()
    drain(stack)
    receiver = stack.receiver
    assert receiver.deliveries
    assert stack.sandbox.exported(SYSTEM) == receiver.delivered_ids()
    for delivery in receiver.deliveries:
        assert delivery.method == "PUT" and delivery.path == f"/orders/{delivery.order_id}"
        assert delivery.body["id"] == delivery.order_id  # no mapping: Traede's order unchanged


def test_static_headers_reach_the_receiving_system_with_the_idempotency_key(make_stack: MakeStack) -> None:
    headers = {"X-Erp-Company": "CRONUS", "Accept": "application/json"}
    stack: LocalStack = make_stack(orders=3, parameters={"TargetStaticHeaders": json.dumps(headers)})
    stack.poll()
    drain(stack)
    deliveries = stack.receiver.deliveries
    assert deliveries
    for d in deliveries:
        assert {k: d.headers.get(k) for k in headers} == headers
        assert d.headers["Idempotency-Key"].startswith(f"traede:{SYSTEM}:{d.order_id}:")
        assert d.headers["Content-Type"] == "application/json"
        assert d.headers["X-Api-Key"]  # the secret header is still added


def test_one_unmappable_order_in_a_batch_of_ten_is_parked_the_rest_go_on(make_stack: MakeStack, tmp_path: Path) -> None:
    mapping = tmp_path / "strict.jsonata"
    stack: LocalStack = make_stack(orders=12, mapping=str(mapping))  # read at the first invocation's cold start
    orders = [o for o in stack.sandbox.order_list() if o["id"] in stack.sandbox.pending(SYSTEM)][:10]
    assert len(orders) == 10
    bad = orders[6]["id"]
    mapping.write_text(f'id = {bad} ? $error("no ERP vendor for this supplier") : {{"po": order_number}}')

    response = stack.forwarder.invoke(order_event([json.dumps(o) for o in orders]))

    assert response == {"batchItemFailures": []}  # parked on the DLQ with its reason: settled
    good = {o["id"] for o in orders} - {bad}
    assert stack.receiver.delivered_ids() == good
    assert stack.sandbox.exported(SYSTEM) == good
    assert stack.receiver.attempts_for(bad) == 0  # never sent
    (parked,) = stack.dlq_messages()
    assert json.loads(parked["Body"])["id"] == bad  # Traede's order, for a redrive after the fix
    reason = parked["MessageAttributes"]["failure_reason"]["StringValue"]
    assert f"order {bad}" in reason and "strict.jsonata" in reason and "no ERP vendor" in reason


def test_an_order_without_a_placeholder_field_is_parked_alone(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4, target_path="/{order_number}")
    sandbox = stack.sandbox
    orders = [o for o in sandbox.order_list() if o["id"] in sandbox.pending(SYSTEM)][:3]
    nameless = {**orders[1]}
    del nameless["order_number"]
    sandbox.add_orders([nameless])
    bodies = [json.dumps(orders[0]), json.dumps(nameless), json.dumps(orders[2])]

    response = stack.forwarder.invoke(order_event(bodies))

    assert response == {"batchItemFailures": []}
    assert sandbox.exported(SYSTEM) == {orders[0]["id"], orders[2]["id"]}
    paths = {d.path for d in stack.receiver.deliveries}
    assert paths == {f"/orders/{orders[0]['order_number']}", f"/orders/{orders[2]['order_number']}"}
    (parked,) = stack.dlq_messages()
    reason = parked["MessageAttributes"]["failure_reason"]["StringValue"]
    assert f"order {nameless['id']} has no 'order_number'" in reason and "{order_number}" in reason


def test_a_mapping_with_a_syntax_error_fails_the_cold_start_naming_the_file(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonata"
    broken.write_text('{"po": order_number')
    stack: LocalStack = make_stack(orders=1, mapping=str(broken))
    with pytest.raises(MappingError, match=rf"{broken}.*does not compile"):
        stack.forwarder.cold_start()


def test_a_mapping_that_fails_on_the_sample_order_fails_the_cold_start(make_stack: MakeStack, tmp_path: Path) -> None:
    typo = tmp_path / "typo.jsonata"
    typo.write_text('{"po": $uppercse(order_number)}')
    stack: LocalStack = make_stack(orders=1, mapping=str(typo))
    with pytest.raises(MappingError, match=rf"{typo}.*uppercse.*sample order"):
        stack.forwarder.cold_start()


def test_bad_static_headers_fail_the_cold_start(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=1, parameters={"TargetStaticHeaders": '{"Idempotency-Key": "mine"}'})
    with pytest.raises(ConfigError, match="TARGET_STATIC_HEADERS may not set Idempotency-Key"):
        stack.forwarder.cold_start()


def test_put_is_retried_like_post(tmp_path: Path) -> None:
    order = {"id": 77, "order_number": "PO-77", "updated_at": "2026-01-01 00:00:00"}
    with ReceivingSystem() as erp:
        erp.fail_ids = {77}  # 503 every time
        client = TargetClient(build_session(), erp.url + "/{id}", (0.5, 1.0), shape=RequestShape(method="PUT"))
        result = client.deliver(json.dumps(order), "traede:erp:77:v")
        assert result.outcome is Outcome.FAILED and result.status == 503
        assert erp.attempts_for(77) == 4  # the first try and urllib3's 3 retries
