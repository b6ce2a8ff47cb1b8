"""The forwarder's ledger round trips per batch, counted on the wire, and its rules under batched calls.

The real handlers against moto and DynamoDB Local; a botocore `before-send` hook on the handlers'
boto3 session counts every DynamoDB request (retries included) by operation.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from traede_export import wiring
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef, idempotency_key
from traede_local.local_stack import LocalStack, MakeStack

SYSTEM = "local-erp"


class Calls:
    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        self.ops[(target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]] += 1

    def take(self) -> dict[str, int]:
        taken = dict(self.ops)
        self.ops.clear()
        return taken


@pytest.fixture
def calls() -> Iterator[Calls]:
    # Clients copy their session's hooks when created: registered before the stack's cold starts.
    counter = Calls()
    events = wiring._aws_session().events
    events.register("before-send.dynamodb", counter, unique_id="test-hot-path")
    yield counter
    events.unregister("before-send.dynamodb", unique_id="test-hot-path")


def ten_polled(make_stack: MakeStack) -> tuple[LocalStack, list[int]]:
    stack: LocalStack = make_stack(orders=16)
    assert stack.sandbox is not None
    pending = stack.sandbox.pending(SYSTEM)
    assert len(pending) >= 10
    stack.poll()
    return stack, pending


def test_a_batch_of_ten_makes_a_read_a_lease_call_and_one_call_for_its_delivery_and_mark_records(
    make_stack: MakeStack, calls: Calls
) -> None:
    stack, _ = ten_polled(make_stack)
    assert stack.receiver is not None
    stack.receiver.faults.latency = 0.3  # the ten POSTs are in flight together and answered together
    source = stack.event_source()
    stack.forwarder.cold_start()
    calls.take()
    assert source.poll_once() == 10
    # Before: 1 read + 10 leases + 10 delivery records + 10 mark records = 31 (32 with the re-read
    # before marking). Then: read, leases, 10 records, re-read, marks = 14. Now: read, leases, and one
    # call for the ten delivery records with the ten mark records, made once the last POST answered
    # (records of POSTs answered together share a call; mark records must follow every POST).
    ops = calls.take()
    assert ops.pop("BatchGetItem") == 1
    assert 2 <= ops.pop("TransactWriteItems", 0) + ops.pop("UpdateItem", 0) <= 3  # 3: a straggler past the linger
    assert ops == {}
    assert len(stack.receiver.delivered_ids()) == 10


def test_a_delivered_but_unmarked_batch_is_only_marked_in_two_round_trips(make_stack: MakeStack, calls: Calls) -> None:
    stack, _ = ten_polled(make_stack)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    source = stack.event_source()
    stack.forwarder.cold_start()
    sandbox.faults.error_rate = 1.0  # delivered, but every mark fails: the batch comes back
    assert source.poll_once() == 10
    sandbox.faults.error_rate = 0.0
    delivered = receiver.delivered_ids()
    assert len(delivered) == 10 and not sandbox.exported(SYSTEM) & delivered
    calls.take()
    time.sleep(stack.options.visibility_timeout + 0.5)
    assert source.poll_once() == 10
    # No POST, so no re-read before marking: the first read is as fresh. 11 (12) before.
    assert calls.take() == {"BatchGetItem": 1, "TransactWriteItems": 1}
    assert delivered <= sandbox.exported(SYSTEM)
    assert len(receiver.deliveries) == 10  # only marked: no POST again


def test_a_lease_held_by_another_copy_defers_only_its_order(make_stack: MakeStack) -> None:
    # The batch's leases are one transaction: the one order whose lease is held fails alone.
    stack, pending = ten_polled(make_stack)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    held = pending[3]
    ref = OrderRef.from_order(sandbox.order(held))
    ledger = ExportLedger.on_dynamodb(stack.dynamodb, stack.table, SYSTEM)
    reexport_key = idempotency_key(SYSTEM, ref, "2020-01-01T00:00:00Z")
    # Another copy (a re-export's) of the same version holds the lease.
    assert ledger.begin_deliveries([(ref, reexport_key)], 600, "another-batch") == [True]
    assert stack.event_source().poll_once() == 10  # moto hands out the queue in order: `held` is in it
    delivered = receiver.delivered_ids()
    assert held not in delivered and len(delivered) == 9
    assert sandbox.exported(SYSTEM) == delivered
    assert ledger.get_many([held])[held].delivering_key == reexport_key
