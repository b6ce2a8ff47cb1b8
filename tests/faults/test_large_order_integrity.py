"""A large order's S3 object is delivered only if it holds what its pointer names.

The pointer's message names the order and version (attributes) and its key names them too, with
the SHA-256 of the body. An object replaced in the bucket (another order's body, or this order's
with other content) is never delivered: it is parked with the reason and counted
(`LargeOrderMismatch`, alarmed), and the next poll uploads the real body again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from traede_export.claim_check import Pointer
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops.ops import peek_messages

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def emitted(stdout: str, metric: str) -> float:
    """The sum of one metric over the EMF lines the handlers printed."""
    total = 0.0
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            total += sum(json.loads(line).get(metric, [0.0]))
    return total


def test_a_replaced_large_order_object_is_parked_never_delivered_and_the_real_body_follows(
    make_stack: MakeStack, capfd: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=1, large=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert stack.poll()["large"] == 3
    pending = set(sandbox.pending(SYSTEM))
    pointers: dict[int, Pointer] = {}
    for message in peek_messages(stack.sqs, stack.queue_url, wait_seconds=0):
        pointer = Pointer.parse(message["Body"])
        if pointer is not None:
            pointers[int(message["MessageAttributes"]["order_id"]["StringValue"])] = pointer
    swapped, intact, edited = sorted(pointers)

    def replace(order_id: int, body: bytes) -> None:
        stack.s3.put_object(Bucket=stack.bucket, Key=pointers[order_id].key, Body=body)

    def stored(order_id: int) -> bytes:
        return bytes(stack.s3.get_object(Bucket=stack.bucket, Key=pointers[order_id].key)["Body"].read())

    # Another order's body under this order's key; this order's id and version with other content.
    replace(swapped, stored(intact))
    other: dict[str, Any] = json.loads(stored(edited))
    other["lines"][0]["quantity"] += 1000
    replace(edited, json.dumps(other).encode())
    capfd.readouterr()

    stack.event_source().drain(max_seconds=30)

    assert receiver.attempts_for(swapped) == 0 and receiver.attempts_for(edited) == 0
    assert receiver.attempts_for(intact) == 1  # the swapped-in body was not delivered as a second copy
    assert sandbox.exported(SYSTEM) == pending - {swapped, edited}
    parked = {int(m["MessageAttributes"]["order_id"]["StringValue"]): m for m in stack.dlq_messages()}
    assert set(parked) == {swapped, edited}
    for order_id, message in parked.items():
        assert Pointer.parse(message["Body"]) == pointers[order_id]  # the pointer as queued, for a redrive
        reason = message["MessageAttributes"]["failure_reason"]["StringValue"]
        assert pointers[order_id].key in reason and "does not" in reason
    assert f"holds order {intact}" in parked[swapped]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert emitted(capfd.readouterr().out, "LargeOrderMismatch") == 2

    # The next poll uploads each real body again (same key) and it is delivered, once.
    assert stack.poll()["large"] == 2
    stack.event_source().drain(max_seconds=30)
    assert receiver.attempts_for(swapped) == receiver.attempts_for(edited) == 1
    assert sandbox.exported(SYSTEM) == pending
    (delivery,) = [d for d in receiver.deliveries if d.order_id == edited]
    assert delivery.body["lines"][0]["quantity"] == sandbox.order(edited)["lines"][0]["quantity"]  # the real one
