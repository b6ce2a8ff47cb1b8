"""Export entries and messages that are not production orders: parked once with the reason,
never a crash of the poll or the batch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.stack import dlq_reasons, eligible, send_order
from traede_export.claim_check import Pointer
from traede_export.models import Attr
from traede_local.local_stack import LocalStack, MakeStack
from traede_local.seed import seed_large_orders

pytestmark = pytest.mark.faults


def test_a_large_export_entry_that_is_not_an_order_is_parked_once_not_lost(make_stack: MakeStack) -> None:
    """An entry over 1 MiB with an `updated_at` that is not an instant: parking it inline fails
    (SQS's limit), yet its one sighting was spent, so it never reached the DLQ the runbook points at."""
    stack = make_stack(orders=0)
    sandbox = stack.sandbox
    (entry,) = seed_large_orders(1, start_id=7001)
    entry["updated_at"] = "last Tuesday"
    sandbox.add_orders([entry])
    assert stack.poll()["invalid"] == 1
    assert stack.poll()["invalid"] == 1  # counted on every poll (the alarm), parked once

    (parked,) = stack.dlq_messages()
    attributes = parked["MessageAttributes"]
    assert attributes[Attr.ORDER_ID]["StringValue"] == "7001"
    assert "not an instant" in attributes[Attr.FAILURE_REASON]["StringValue"]
    pointer = Pointer.parse(parked["Body"])
    assert pointer is not None and pointer.bucket == stack.bucket
    stored = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=pointer.key)["Body"].read())
    assert stored["id"] == 7001 and stored["updated_at"] == "last Tuesday"


def export_entry_with_id(stack: LocalStack, entry_id: Any) -> None:
    """An export entry whose `id` is not an integer (the sandbox itself only stores integer ids)."""
    stack.sandbox.add_orders([{"id": 5, "updated_at": "2026-01-02T03:04:05Z"}])
    stack.sandbox._orders[5]["id"] = entry_id


def test_an_export_entry_whose_parking_failed_is_parked_by_a_later_poll(make_stack: MakeStack) -> None:
    """The entry's one sighting was recorded before it was parked: when the park failed (here its S3
    upload, the bucket briefly gone), no later poll parked it, and InvalidOrdersAlarm pointed at an
    empty DLQ for as long as Traede listed it."""
    stack = make_stack(orders=0, overrides={"LARGE_ORDER_THRESHOLD_BYTES": "1024"}, dynamodb="local")
    stack.sandbox.add_orders([{"id": 7001, "updated_at": "last Tuesday", "note": "x" * 4000}])
    stack.s3.delete_bucket(Bucket=stack.bucket)
    assert stack.poll()["invalid"] == 1
    assert stack.dlq_messages() == []

    stack.s3.create_bucket(Bucket=stack.bucket)
    assert stack.poll()["invalid"] == 1
    assert stack.poll()["invalid"] == 1  # and still parked once
    (parked,) = stack.dlq_messages()
    assert "not an instant" in parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]


def test_an_export_entry_whose_string_id_is_a_lone_surrogate_does_not_crash_the_poll(make_stack: MakeStack) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); the id went verbatim into the DLQ copy's
    order_id attribute, which is not UTF-8-encodable: the poll crashed, and the spent sighting
    kept the entry out of the DLQ for good."""
    stack = make_stack(orders=2)
    export_entry_with_id(stack, json.loads('"\\ud800"'))
    result = stack.poll()
    assert result["invalid"] == 1 and result["enqueued"] == 2
    (parked,) = stack.dlq_messages()
    assert "integer 'id'" in parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]


def test_an_export_entry_with_a_huge_string_id_is_parked(make_stack: MakeStack) -> None:
    """The body goes to S3 when large, but the id was copied whole into the order_id attribute:
    the DLQ copy passed SQS's 1 MiB and was never parked."""
    stack = make_stack(orders=1)
    export_entry_with_id(stack, "7" * (1100 * 1024))
    assert stack.poll()["invalid"] == 1
    (parked,) = stack.dlq_messages()
    assert len(parked["MessageAttributes"][Attr.ORDER_ID]["StringValue"]) <= 100


KEY_TOO_LONG_ID = 10**2100


def test_an_order_id_too_long_for_a_ledger_key_does_not_sink_its_page(make_stack: Any) -> None:
    # One transaction per page: the bad key cancelled the page's claims and crashed the poll, every poll.
    stack: LocalStack = make_stack(orders=3)
    sandbox = stack.sandbox
    assert sandbox is not None
    good = eligible(stack)
    sandbox.add_orders([{**sandbox.order(good[0]), "id": KEY_TOO_LONG_ID}])
    result = stack.poll()
    assert result["enqueued"] == len(good) and result["invalid"] == 1
    assert any("id" in reason for reason in dlq_reasons(stack).values())


def test_an_order_id_too_long_for_a_ledger_key_does_not_sink_its_batch(make_stack: Any) -> None:
    # The forwarder's first ledger read of a batch holding it failed the whole batch, every try.
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    good = sandbox.order(eligible(stack)[0])
    send_order(stack, {**good, "id": KEY_TOO_LONG_ID})
    send_order(stack, good)
    source = stack.event_source()
    source.drain()
    assert source.stats.failures == 0
    assert receiver.delivered_ids() == {good["id"]}
    assert good["id"] in sandbox.exported("local-erp")
    assert len(stack.dlq_messages()) == 1


def test_deeply_nested_or_huge_int_bodies_are_unreadable_not_a_crash(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    good = sandbox.order(eligible(stack)[0])
    for body in ("[" * 200_000 + "]" * 200_000, '{"id": ' + "9" * 5000 + "}"):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    send_order(stack, good)
    source = stack.event_source()
    source.drain()
    assert source.stats.failures == 0
    assert receiver.delivered_ids() == {good["id"]}
    parked = stack.dlq_messages()
    assert len(parked) == 2
    assert all("not a production order" in m["MessageAttributes"]["failure_reason"]["StringValue"] for m in parked)
