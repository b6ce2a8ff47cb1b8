"""Two copies of one order version handled by two forwarder invocations at once.

A poll's copy and a replayed or redriven copy, SQS's at-least-once duplicate, or a redelivery after
the visibility timeout all reach two containers while the first POST is still on its way.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from helpers.stack import (
    SYSTEM,
    delivered_and_held,
    eligible,
    in_background,
    put_raw,
    send_order,
    wait_until,
)
from traede_export.models import OrderRef, idempotency_key
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults


def test_a_live_post_is_never_joined_by_a_second_copy_of_its_version(make_stack: MakeStack) -> None:
    # The delivery lease was re-entered by any copy under the same Idempotency-Key, so the second
    # container POSTed while the first one's POST was still running: an ERP that does not dedupe
    # keys (most do not) stored the purchase order twice.
    stack: LocalStack = make_stack(orders=1, visibility_timeout=30)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order = sandbox.order(eligible(stack)[0])
    receiver.delays[idempotency_key(SYSTEM, OrderRef.from_order(order))] = 2.0  # a slow ERP
    send_order(stack, order)
    first = in_background(stack.event_source().poll_once)
    wait_until(lambda: receiver.attempts == 1)  # the first POST is on its way
    send_order(stack, order)  # the second copy
    second = LocalFunction(stack.forwarder.spec, overrides=dict(stack.forwarder.overrides))
    stack.event_source(second).poll_once()
    first.join()
    assert receiver.attempts == 1 and len(receiver.deliveries) == 1
    assert order["id"] in sandbox.exported(SYSTEM)


def test_a_delivery_lease_is_joined_by_no_copy_until_it_runs_out(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order = sandbox.order(eligible(stack)[0])
    ref = OrderRef.from_order(order)
    scheduled_key = idempotency_key(SYSTEM, ref)
    # A container crashed mid-POST of the scheduled copy (or its POST is still running): its lease is held.
    put_raw(
        stack,
        ref.order_id,
        delivering_version={"S": ref.version},
        delivering_key={"S": scheduled_key},
        delivering_until={"N": str(int(time.time()) + 2)},
        delivering_token={"S": "the-crashed-batch"},
    )
    send_order(stack, order, reexport_since="2020-01-01T00:00:00Z")  # another key for the same version: waits
    send_order(stack, order)  # the retry of the crashed message waits too: its POST may still be live
    stack.event_source().poll_once()
    assert receiver.attempts == 0
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    time.sleep(3)  # the lease (the invocation's time plus a margin) runs out
    send_order(stack, order)
    stack.event_source().drain()
    assert receiver.keys_by_order() == {ref.order_id: {scheduled_key}}
    assert ref.order_id in sandbox.exported(SYSTEM)


def test_no_mark_on_the_strength_of_an_older_version_delivered_meanwhile(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3, visibility_timeout=30)
    sandbox, receiver = stack.sandbox, stack.receiver
    x, y, first = delivered_and_held(stack)
    sandbox.edit(x)
    send_order(stack, sandbox.order(x))
    sandbox.faults.error_rate = 1.0  # B delivers v2, but its mark fails
    second = LocalFunction(stack.forwarder.spec, overrides=dict(stack.forwarder.overrides))
    stack.event_source(second).poll_once()
    sandbox.faults.error_rate = 0.0
    assert len(receiver.keys_by_order()[x]) == 2
    first.join()
    assert x not in sandbox.exported(SYSTEM)  # A must not mark on v1's strength
    assert y in sandbox.exported(SYSTEM)
