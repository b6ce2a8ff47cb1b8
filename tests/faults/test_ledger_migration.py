"""Ledger items written by older releases: read as they were meant, never a stalled order."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.stack import SYSTEM, eligible, ledger_of, put_raw, send_order
from traede_export.models import epoch_ms
from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults


def test_ledger_reads_the_previous_releases_text_timestamps(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=1)
    put_raw(
        stack,
        78,
        delivered_version={"S": "2026-01-05T10:00:00.000000Z"},
        delivered_at={"S": "2026-01-05T10:00:05Z"},
        marked_version={"S": "2026-01-05T10:00:00.000000Z"},
        marked_at={"S": "2026-01-05T10:00:07Z"},
    )
    entry = ledger_of(stack).get_many([78])[78]
    assert entry.delivered_ms == epoch_ms("2026-01-05T10:00:05Z")
    assert entry.marked_ms == epoch_ms("2026-01-05T10:00:07Z")


def test_an_unparseable_stored_version_does_not_stall_the_order(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order = sandbox.order(eligible(stack)[0])
    old = {"S": "Mon, 05 Jan 2026 10:00:00"}  # as text it sorts after every real version
    put_raw(stack, order["id"], enqueued_version=old, delivered_version=old, marked_version=old)
    send_order(stack, order)
    stack.event_source().drain()
    assert receiver.delivered_ids() == {order["id"]}
    assert order["id"] in sandbox.exported(SYSTEM)
