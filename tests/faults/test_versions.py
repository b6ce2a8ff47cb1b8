"""Versions (`updated_at`) that cannot be compared, or that go backwards."""

from __future__ import annotations

import time
from typing import Any

import pytest

from helpers.stack import SYSTEM, dlq_reasons, eligible, emitted_metrics, send_order
from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults


BAD_INSTANTS = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:30:00+05:00", "2026-13-01 10:00:00", "0000-01-01 10:00:00"]


def test_overflowing_updated_at_makes_the_order_invalid_in_the_poll(
    make_stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox = stack.sandbox
    assert sandbox is not None
    good = eligible(stack)
    template = sandbox.order(good[0])
    sandbox.add_orders({**template, "id": 9100 + i, "updated_at": t} for i, t in enumerate(BAD_INSTANTS))
    capsys.readouterr()
    result = stack.poll()
    assert result["invalid"] == len(BAD_INSTANTS) and result["enqueued"] == len(good)
    assert emitted_metrics(capsys.readouterr().out)["InvalidOrders"] == len(BAD_INSTANTS)
    reasons = dlq_reasons(stack)
    assert all("updated_at" in reasons[str(9100 + i)] for i in range(len(BAD_INSTANTS)))


def test_overflowing_updated_at_makes_the_order_invalid_in_the_forwarder(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    good = sandbox.order(eligible(stack)[0])
    for t in BAD_INSTANTS:
        send_order(stack, {**good, "updated_at": t})
    send_order(stack, good, reexport_since="9999-12-31T23:59:59-05:00")  # a bad attribute, not only a bad body
    send_order(stack, good)
    source = stack.event_source()
    source.drain()
    assert source.stats.failures == 0  # the bad ones are parked at once; the batch never crashed
    assert receiver.delivered_ids() == {good["id"]}
    assert len(stack.dlq_messages()) == len(BAD_INSTANTS) + 1


def test_an_updated_at_that_goes_backwards_is_counted_and_logged(
    make_stack: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack: LocalStack = make_stack(orders=3, overrides={"IN_FLIGHT_LEASE_SECONDS": "1"})
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order_id = eligible(stack)[0]
    older = sandbox.order(order_id)
    sandbox.edit(order_id)
    stack.poll()
    stack.event_source().drain()
    assert order_id in sandbox.exported(SYSTEM)
    time.sleep(2.1)  # the lease expires (whole seconds)
    sandbox.edit(order_id)  # pending again, but Traede shows an older updated_at (a restore, a clock step)
    sandbox._orders[order_id]["updated_at"] = older["updated_at"]
    assert order_id in eligible(stack)
    capsys.readouterr()
    stack.poll()
    stack.event_source().drain()
    assert emitted_metrics(capsys.readouterr().out).get("VersionWentBackwards") == 1
    assert any("went backwards" in r.getMessage() and getattr(r, "order_id", None) == order_id for r in caplog.records)
