"""The real handlers, with real-shaped events, against moto and the local HTTP servers."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from traede_export.models import MAX_MARK_BATCH
from traede_local.events import load_event
from traede_local.lambda_runtime import sqs_event
from traede_local.local_stack import LocalStack, MakeStack

SYSTEM = "local-erp"


def drain(stack: LocalStack, seconds: float = 120) -> Any:
    return stack.event_source().drain(max_seconds=seconds)


def order_event(stack: LocalStack, bodies: list[str]) -> dict[str, Any]:
    """An SQS event shaped like events/sqs-order.json, one record per body."""
    template = load_event("sqs-order")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"msg-{i}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def test_clean_export_delivers_each_order_once_and_marks_in_tens(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=260)
    pending = len(stack.sandbox.pending(SYSTEM))
    assert pending > 200

    first = stack.poll(load_event("scheduled"))
    assert first["fetched"] == first["enqueued"] == pending
    assert first["pages"] == math.ceil(pending / 60) + 1  # paging ends on an empty page
    drain(stack)

    receiver, sandbox = stack.receiver, stack.sandbox
    assert receiver.delivered_ids() == sandbox.exported(SYSTEM)
    assert len(receiver.delivered_ids()) == pending
    assert receiver.duplicates() == 0
    assert all(len(keys) == 1 for keys in receiver.keys_by_order().values())
    assert len(sandbox.mark_calls) == math.ceil(pending / MAX_MARK_BATCH)
    assert max(len(call) for call in sandbox.mark_calls) <= MAX_MARK_BATCH

    second = stack.poll(load_event("scheduled"))
    assert second["enqueued"] == 0 and second["fetched"] == 0
    assert stack.queue_depth(stack.queue_url) == 0


def test_a_second_poll_while_orders_are_in_flight_enqueues_nothing(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=25)
    first = stack.poll()
    second = stack.poll()  # nothing forwarded yet: every order is still pending in Traede
    assert second["fetched"] == first["fetched"] > 0
    assert second["enqueued"] == 0 and second["skipped"] == first["enqueued"]
    assert stack.queue_depth(stack.queue_url) == first["enqueued"]


def test_partial_failure_reports_only_the_failed_records(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=12)
    orders = stack.sandbox.order_list()[:3]
    stack.receiver.fail_ids = {orders[1]["id"]}
    bodies = [json.dumps(o) for o in orders] + ["{not json"]
    response = stack.forwarder.invoke(order_event(stack, bodies))

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {"msg-1"}  # the unreadable body is parked in the DLQ, not retried
    assert [m["Body"] for m in stack.dlq_messages()] == ["{not json"]
    assert stack.sandbox.exported(SYSTEM) == {orders[0]["id"], orders[2]["id"]}
    note = stack.sandbox.notes[orders[0]["id"]]
    assert f"Idempotency-Key traede:{SYSTEM}:{orders[0]['id']}:" in note
    assert stack.receiver.delivered_ids() == {orders[0]["id"], orders[2]["id"]}


def test_malformed_body_is_parked_in_the_dlq_with_a_reason(
    make_stack: MakeStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack: LocalStack = make_stack(orders=3)
    good = json.dumps(stack.sandbox.order_list()[0])
    bodies = [good, "{not json", json.dumps({"id": "abc", "updated_at": "2026-01-01 00:00:00"})]
    stack.forwarder.cold_start()
    response = stack.forwarder.invoke(order_event(stack, bodies))
    assert response["batchItemFailures"] == []  # retrying cannot help: parked at once
    reasons = {r.__dict__.get("message_id"): r.__dict__.get("reason", "") for r in caplog.records}
    assert "not JSON" in reasons["msg-1"]
    assert "integer 'id'" in reasons["msg-2"]
    parked = {m["Body"]: m["MessageAttributes"]["failure_reason"]["StringValue"] for m in stack.dlq_messages()}
    assert set(parked) == set(bodies[1:])
    assert "not JSON" in parked["{not json"]


def test_rejected_order_is_never_marked_and_goes_to_the_dlq(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=15)
    rejected = stack.sandbox.pending(SYSTEM)[4]
    stack.receiver.reject_ids = {rejected}
    pending = set(stack.sandbox.pending(SYSTEM))
    assert rejected in pending
    stack.poll()
    stats = drain(stack)
    assert rejected not in stack.sandbox.exported(SYSTEM)
    assert rejected not in stack.receiver.delivered_ids()
    assert stack.receiver.attempts_for(rejected) == 1  # fail fast: no retries
    parked = stack.dlq_messages()
    assert [json.loads(m["Body"])["id"] for m in parked] == [rejected]
    assert "422" in parked[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert stats.failures == 0
    assert stack.sandbox.exported(SYSTEM) == pending - {rejected}


def test_reexport_delivers_again_under_a_new_key(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=20)
    stack.poll()
    drain(stack)
    first_keys = stack.receiver.keys_by_order()
    assert stack.poll()["enqueued"] == 0

    time.sleep(1.1)  # Traede's datetimes have whole seconds: step past the exports' second
    event = load_event("reexport")
    event["detail"]["not_exported_since"] = datetime.now(UTC).isoformat()
    again = stack.poll(event)
    assert again["enqueued"] == len(first_keys)
    drain(stack)
    keys = stack.receiver.keys_by_order()
    assert all(len(keys[oid]) == 2 and first_keys[oid] < keys[oid] for oid in first_keys)
    assert all(":reexport:" in k for oid in keys for k in keys[oid] - first_keys[oid])


@pytest.mark.parametrize("paging", ["paged", "all", "ignore_page"])
def test_every_paging_behaviour_enqueues_each_order_once(make_stack: MakeStack, paging: str) -> None:
    stack: LocalStack = make_stack(orders=130, paging=paging)
    pending = len(stack.sandbox.pending(SYSTEM))
    result = stack.poll()
    expected = pending if paging != "ignore_page" else min(pending, 60)
    assert result["enqueued"] == expected
    assert stack.queue_depth(stack.queue_url) == expected
    # Paging ends on an empty page, a page larger than `limit`, or a page with nothing new.
    assert result["pages"] == {"paged": math.ceil(pending / 60) + 1, "all": 1, "ignore_page": 2}[paging]
    drain(stack)
    assert len(stack.receiver.delivered_ids()) == expected


def test_credentials_never_reach_logs_urls_or_the_receiving_system(
    make_stack: MakeStack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack: LocalStack = make_stack(orders=15, overrides={"POWERTOOLS_LOG_LEVEL": "DEBUG"})
    service = stack.forwarder.environment["POWERTOOLS_SERVICE_NAME"]
    caplog.set_level("DEBUG", logger=service)  # everything our handlers log, at the most verbose level
    stack.poll()
    drain(stack)
    stack.forwarder.invoke(order_event(stack, ["{broken"]))
    out, err = capfd.readouterr()
    out += "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records if r.name.startswith(service))
    assert "poll finished" in out  # the handlers' log lines were captured
    traede = stack.credentials["traede"]
    target = stack.credentials["target"]
    secret_values = [traede["access_token"], traede["app_key"], *target.values()]
    for value in secret_values:
        assert value not in out and value not in err
    for request in stack.sandbox.requests_log:
        assert "access_token" not in request["query"]
    for delivery in stack.receiver.deliveries:
        sent = json.dumps(delivery.headers) + json.dumps(delivery.body)
        assert traede["access_token"] not in sent and traede["app_key"] not in sent
    # The target does get its own header, and the sandbox its two.
    assert stack.receiver.deliveries and all(
        d.headers.get("X-Api-Key") == target["X-Api-Key"] for d in stack.receiver.deliveries
    )


def test_poller_rejects_a_bad_reexport_value(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=2)
    with pytest.raises(ValueError, match="not_exported_since"):
        stack.poll({"not_exported_since": "last tuesday"})
    assert stack.queue_depth(stack.queue_url) == 0


def test_sample_sqs_event_is_delivered_as_a_test_event(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=1)
    stack.sandbox.add_orders([load_event("order")])
    response = stack.forwarder.invoke(load_event("sqs-order"))
    assert response == {"batchItemFailures": []}
    (delivery,) = stack.receiver.deliveries
    assert delivery.order_id == 4711 and delivery.idempotency_key.endswith(":test-event")
    assert 4711 not in stack.sandbox.exported(SYSTEM)  # a test event is never marked (faults/test_sample_events.py)


def test_sqs_event_helper_matches_the_sample_shape() -> None:
    sample = load_event("sqs-order")["Records"][0]
    built = sqs_event(
        [{"MessageId": "m", "ReceiptHandle": "r", "Body": "{}", "MessageAttributes": {}, "Attributes": {}}], "arn"
    )["Records"][0]
    assert set(built) == set(sample)
