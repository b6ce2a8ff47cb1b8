"""Ledger writes that fail (a throttle past botocore's retries, another writer's transaction on
the item): what took effect is used, what did not fails alone, and nothing is swallowed.

DynamoDB Local never throttles nor conflicts, so these wrap its client or answer for it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from helpers.stack import (
    SYSTEM,
    delivered_and_held,
    eligible,
    export_options,
    ledger_of,
    send_order,
    traede_client,
)
from traede_export.claim_check import ClaimCheck
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef, idempotency_key
from traede_export.poll import Poller
from traede_export.queue import QueueWriter
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults


class ThrottledTransactions:
    """The real (DynamoDB Local) client, whose TransactWriteItems calls numbered in `throttled` fail
    as DynamoDB's do once botocore's retries of a throttle are spent (DynamoDB Local never throttles)."""

    def __init__(self, dynamodb: Any, throttled: set[int]) -> None:
        self._db = dynamodb
        self._throttled = throttled
        self.transactions = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self.transactions in self._throttled:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        return self._db.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def poller_on(stack: LocalStack, ledger: ExportLedger) -> Poller:
    return Poller(
        traede=traede_client(stack),
        ledger=ledger,
        queue=QueueWriter(stack.sqs, stack.queue_url),
        dlq=QueueWriter(stack.sqs, stack.dlq_url),
        claims=ClaimCheck(stack.s3, stack.bucket),
        system_id=SYSTEM,
        options=export_options(stack),
        lease_seconds=3600,
    )


def test_a_failed_claim_transaction_does_not_strand_the_pages_earlier_claims(make_stack: Any) -> None:
    # A page of 150 (the server ignores `limit`) is claimed in two transactions. When the second one
    # failed, claim_many raised: the first 100 orders stayed claimed for the whole lease, never
    # enqueued, and the next poll skipped them as in flight.
    stack: LocalStack = make_stack(orders=150, paging="all")
    pending = eligible(stack)
    assert len(pending) > 100
    client = ThrottledTransactions(stack.dynamodb, throttled={2})
    with contextlib.suppress(ClientError):
        first = poller_on(stack, ExportLedger.on_dynamodb(cast(Any, client), stack.table, SYSTEM)).run("run-1")
        assert first.enqueued == 100 and first.failed == len(pending) - 100  # EnqueueFailures: alarmed
    poller_on(stack, ledger_of(stack)).run("run-2")
    assert stack.queue_depth(stack.queue_url) == len(pending)


class ConflictedDeliveryRecords:
    """Answers every write of one order's delivery record as DynamoDB does while another writer's
    transaction holds the item (a poll's page of claims includes every order on the page, in flight
    or not): TransactionConflictException for an UpdateItem, and TransactionConflict for its item
    of a TransactWriteItems. Armed by `key`; DynamoDB Local serialises, so never does this itself."""

    def __init__(self) -> None:
        self.hits = 0
        self.key = ""  # the Idempotency-Key whose record fails; "" disarms

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body", b"")
        body = body if isinstance(body, bytes) else body.encode()
        if (
            not self.key
            or b"delivered_version = :delivered_version" not in body
            or f'"{self.key}"'.encode() not in body
        ):
            return None
        self.hits += 1
        items = json.loads(body).get("TransactItems")
        if items is None:
            error = {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
            return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": {}}
        reasons = [{"Code": "TransactionConflict" if self.key in json.dumps(item) else "None"} for item in items]
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        return SimpleNamespace(status_code=400), {
            "Error": error,
            "CancellationReasons": reasons,
            "ResponseMetadata": {},
        }


@pytest.fixture
def conflicted(hook_ledger_writes: Callable[[Callable[..., Any]], None]) -> ConflictedDeliveryRecords:
    hook = ConflictedDeliveryRecords()
    hook_ledger_writes(hook)
    return hook


def test_a_duplicate_of_a_marked_version_whose_delivery_record_failed_does_not_swallow_an_edit(
    make_stack: Any, conflicted: ConflictedDeliveryRecords
) -> None:
    # The delivery's record met a poll's transaction and gave up; the version was marked all the
    # same (it did arrive). A duplicate copy then saw no delivery in the ledger: POSTed again and
    # marked again, swallowing an edit made since.
    stack: LocalStack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order_id = eligible(stack)[0]
    old = sandbox.order(order_id)
    conflicted.key = idempotency_key(SYSTEM, OrderRef.from_order(old))
    stack.poll()
    stack.event_source().drain()
    assert conflicted.hits  # the record did fail
    conflicted.key = ""
    assert order_id in sandbox.exported(SYSTEM) and eligible(stack) == []

    sandbox.edit(order_id)  # an edit no poll has seen yet: pending again
    send_order(stack, old)  # SQS hands out a stale duplicate, or an operator replays the old file
    stack.event_source().drain()
    assert eligible(stack) == [order_id]  # the edit is still waiting for the next poll
    assert len([d for d in receiver.deliveries if d.order_id == order_id]) == 1


def test_no_mark_on_an_older_version_after_a_newer_one_was_marked_without_its_delivery_record(
    make_stack: Any, conflicted: ConflictedDeliveryRecords
) -> None:
    # A newer version delivered meanwhile (see test_concurrent_copies), but container B's record of
    # v2 met a transaction and gave up: B marked v2 all the same. A saw no newer delivery and marked
    # on v1's strength, swallowing v3, an edit made after B's mark.
    stack: LocalStack = make_stack(orders=3, visibility_timeout=30)
    sandbox = stack.sandbox
    x, y, first = delivered_and_held(stack)
    sandbox.edit(x)
    v2 = sandbox.order(x)
    conflicted.key = idempotency_key(SYSTEM, OrderRef.from_order(v2))
    send_order(stack, v2)
    second = LocalFunction(stack.forwarder.spec, overrides=dict(stack.forwarder.overrides))
    stack.event_source(second).poll_once()  # B delivers v2 (its record fails) and marks it
    assert conflicted.hits and x in sandbox.exported(SYSTEM)
    conflicted.key = ""
    sandbox.edit(x)  # v3, which no poll has seen yet
    first.join()
    assert x in eligible(stack)  # A must not mark on v1's strength: v3 still waits for the next poll
    assert y in sandbox.exported(SYSTEM)
