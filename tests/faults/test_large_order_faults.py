"""A large order travels as a pointer to its S3 object: what happens when that object or its
pointer is odd, missing or unreadable.

Real handlers against moto (SQS, S3), DynamoDB Local and the local HTTP servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.stack import SYSTEM, eligible, put_pointer, send_message, send_order
from traede_export.claim_check import Pointer
from traede_export.models import Attr, OrderRef, order_attributes
from traede_local.local_stack import MakeStack
from traede_local.seed import seed_large_orders
from traede_ops import cli
from traede_ops.ops import Target, redrive

pytestmark = pytest.mark.faults


def test_a_large_order_object_that_is_not_utf8_fails_alone_and_does_not_sink_its_batch(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = sandbox.pending(SYSTEM)[0]
    send_order(stack, sandbox.order(good))
    put_pointer(stack, 990001, "2026-01-02T03:04:05Z", b'{"id": 990001, "note": "\xff\xfe"}')

    source = stack.event_source()
    assert source.poll_once() == 2  # one batch, one invocation
    assert source.stats.crashes == 0
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)
    (parked,) = stack.dlq_messages()  # the odd one, as the pointer it came as, with the reason
    assert Pointer.parse(parked["Body"]) is not None
    reason = parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]
    assert "UTF-8" in reason
    assert stack.queue_depth(stack.queue_url) == 0


def test_a_redriven_refused_large_order_whose_object_expired_is_uploaded_again_by_the_next_poll(
    make_stack: MakeStack,
) -> None:
    """A refusal is parked as a new DLQ message (14 days from then), and each redrive-and-refuse
    starts that over, so a pointer can outlive the object's 30 days. The README promises that a
    missing object's order is uploaded again by the next poll, but the ledger still remembered the
    refusal: no poll claimed that version again, and the redrive's "try again" was lost."""
    stack = make_stack(orders=0, large=1)
    sandbox, receiver = stack.sandbox, stack.receiver
    (order_id,) = sandbox.pending(SYSTEM)
    receiver.reject_ids = {order_id}
    stack.poll()
    source = stack.event_source()
    source.drain(max_seconds=30)
    assert len(stack.dlq_messages()) == 1  # refused, parked as a pointer; the ledger remembers it

    (key,) = stack.large_objects()
    stack.s3.delete_object(Bucket=stack.bucket, Key=key)  # expired by the lifecycle rule
    receiver.reject_ids.clear()  # the ERP is fixed, and the operator redrives
    redrive(Target(queue_url=stack.queue_url, dlq_url=stack.dlq_url), "batch", expected=1)
    source.poll_once()  # the object is missing: the record fails (LargeOrderMissing)

    again = stack.poll()
    assert (again["enqueued"], again["large"]) == (1, 1), again
    source.drain(max_seconds=30)
    assert sandbox.exported(SYSTEM) == {order_id} == receiver.delivered_ids()


def test_an_unreadable_pointer_whose_order_id_attribute_is_not_ascii_digits_fails_alone(make_stack: MakeStack) -> None:
    """The order id of a pointer whose object is missing comes from its attributes; `"²".isdigit()`
    is True but int("²") raises, which crashed the invocation and returned the whole batch."""
    stack = make_stack(orders=10)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = sandbox.pending(SYSTEM)[0]
    send_order(stack, sandbox.order(good))
    attributes = order_attributes(SYSTEM, OrderRef(1, "2026-01-02T03:04:05Z"), "run-1", None)
    attributes[Attr.ORDER_ID]["StringValue"] = "²"
    pointer = Pointer(stack.bucket, "orders/2/gone.json").body()
    send_message(stack, stack.queue_url, pointer, attributes)

    source = stack.event_source()
    assert source.poll_once() == 2
    assert source.stats.crashes == 0 and source.stats.failures == 1
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)


def test_an_unreadable_pointer_whose_order_id_attribute_has_thousands_of_digits_fails_alone(
    make_stack: MakeStack,
) -> None:
    """ASCII digits, yet int() refuses more than 4,300 of them (ValueError, not InvalidOrder): the
    read of one record whose object is missing crashed the invocation and returned the whole batch."""
    stack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = eligible(stack)[0]
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(sandbox.order(good)))
    attributes: dict[str, Any] = order_attributes(SYSTEM, OrderRef(1, "2026-01-02T03:04:05Z"), "run-1", None)
    attributes[Attr.ORDER_ID]["StringValue"] = "7" * 5000
    pointer = Pointer(stack.bucket, "orders/1/gone.json").body()
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=pointer, MessageAttributes=attributes)

    source = stack.event_source()
    assert source.poll_once() == 2
    assert source.stats.crashes == 0 and source.stats.failures == 1
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)


def test_replay_without_the_bucket_does_not_send_an_order_over_the_threshold_inline(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay's docstring says an order over the threshold fails without the bucket; up to 1 MiB
    it went inline, past the 256 KiB that keeps a forwarder batch within Lambda's 6 MB payload."""
    stack = make_stack(orders=10)
    (large,) = seed_large_orders(1, start_id=9001, size=400 * 1024)
    small = stack.sandbox.order(stack.sandbox.pending(SYSTEM)[0])
    (tmp_path / "large.json").write_text(json.dumps(large))
    (tmp_path / "small.json").write_text(json.dumps(small))
    capsys.readouterr()
    code = cli.main(
        ["replay", "--queue-url", stack.queue_url, "--system-id", SYSTEM, "--json", str(tmp_path)]  # no --bucket
    )
    report = {Path(f["path"]).name: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert code == 1 and report["small.json"]["ok"]
    assert "--bucket" in report["large.json"]["failed"]["9001"]
    queued = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [json.loads(m["Body"])["id"] for m in queued["Messages"]] == [small["id"]]
