"""Defects found by attacking the ledger's hot path in transactions (claims per page, leases and marks
per batch), each named after its case.

Real handlers against moto, DynamoDB Local and the local HTTP servers, as in test_review.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_contract import dlq_reasons, eligible, send_order

from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults

# An integer id, but its ledger key would pass DynamoDB's 2,048-byte limit on a partition key.
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
