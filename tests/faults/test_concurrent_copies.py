"""Two copies of one order version handled by two forwarder invocations at once.

A poll's copy and a replayed or redriven copy, SQS's at-least-once duplicate, or a redelivery after
the visibility timeout all reach two containers while the first POST is still on its way.
"""

from __future__ import annotations

import pytest

from helpers.stack import SYSTEM, eligible, in_background, send_order, wait_until
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
