"""What the ledger remembers of an ERP's refusal, and what it does not."""

from __future__ import annotations

import time
from typing import Any

import pytest

from helpers.stack import SYSTEM, eligible, ledger_of
from traede_export.models import OrderRef, idempotency_key
from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("fault", ["unauthorised", "redirect"])
def test_a_configuration_error_is_not_remembered_as_a_refusal_of_the_version(make_stack: Any, fault: str) -> None:
    stack: LocalStack = make_stack(orders=3, overrides={"IN_FLIGHT_LEASE_SECONDS": "1"})
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order_id = eligible(stack)[0]
    saved = dict(receiver.required_headers)
    if fault == "unauthorised":
        receiver.required_headers = {"X-Api-Key": "rotated"}  # the ERP's key was rotated: 401
    else:
        receiver.redirect = (301, receiver.url + "/")
    stack.poll()
    stack.event_source().drain()
    assert order_id not in sandbox.exported(SYSTEM)
    entry = ledger_of(stack).get_many([order_id])[order_id]
    assert entry.rejected_version == ""
    receiver.required_headers, receiver.redirect = saved, None  # the operator fixes the configuration
    time.sleep(2.1)  # the poll's lease expires (whole seconds)
    stack.poll()
    stack.event_source().drain()
    assert order_id in sandbox.exported(SYSTEM)


def test_a_delivery_clears_an_old_refusal(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=1)
    ledger = ledger_of(stack)
    ref = OrderRef(order_id=77, updated_at="2026-01-05T10:00:00Z")
    ledger.record_rejection(ref, "HTTP 422")
    # An operator's redrive got through.
    assert ledger.record_deliveries([(ref, idempotency_key(SYSTEM, ref))]) == [True]
    assert ledger.get_many([77])[77].rejected_version == ""
    # Its mark failed: a later poll must be able to send it again.
    assert ledger.claim(ref, "run-2", lease_seconds=60)
