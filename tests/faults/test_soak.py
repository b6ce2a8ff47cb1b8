"""Soak: 300+ orders through repeated polls, redeliveries and the DLQ with ~30% faults per hop.

Run with `make soak` (`pytest -m soak -s`). It prints the figures the closing note quotes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from traede_export.models import MAX_MARK_BATCH
from traede_ops.faults import Faults, ReceiverFaults
from traede_ops.local_stack import LocalStack

pytestmark = pytest.mark.soak
SYSTEM = "local-erp"
TIME_LIMIT = 420.0  # seconds; the loop stops by itself
POLL_INTERVAL = 5.0


def test_soak_exactly_once_under_heavy_faults(make_stack: Any) -> None:
    stack: LocalStack = make_stack(
        orders=400,
        # ~30% of requests on each HTTP hop fail, in every way HTTP can.
        traede_faults=Faults(error_rate=0.10, throttle_rate=0.08, drop_rate=0.06, slow_rate=0.06, slow_seconds=1.0),
        target_faults=ReceiverFaults(
            error_rate=0.08,
            throttle_rate=0.06,
            drop_rate=0.05,
            slow_rate=0.05,
            accepted_but_502_rate=0.06,
            slow_seconds=1.0,
            seed=11,
        ),
        visibility_timeout=4,
        overrides={
            "HTTP_READ_TIMEOUT": "0.5",
            "HTTP_CONNECT_TIMEOUT": "0.5",
            # Well beyond the local retry window (4 s visibility x 5 receives), as the template has it.
            "IN_FLIGHT_LEASE_SECONDS": "120",
            "TIME_SAFETY_MARGIN_SECONDS": "2",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        },
    )
    orders = set(stack.sandbox.pending(SYSTEM))  # type: ignore[union-attr]
    assert len(orders) >= 300
    # A few orders the ERP refuses (503) for the first minute: they exhaust their receives,
    # land in the DLQ, and must still arrive once the lease lets a later poll re-enqueue them.
    poisoned = set(sorted(orders)[::64])
    stack.receiver.fail_ids = set(poisoned)  # type: ignore[union-attr]
    source = stack.event_source()
    started = time.monotonic()
    polls = poll_failures = enqueued = 0
    while time.monotonic() - started < TIME_LIMIT:
        tick = time.monotonic()
        try:
            result = stack.poll()
            enqueued += result["enqueued"]
        except Exception:  # the poll raised (Traede kept failing): the schedule retries it
            poll_failures += 1
        polls += 1
        source.drain(max_seconds=30)
        if time.monotonic() - started > 60:
            stack.receiver.fail_ids = set()  # type: ignore[union-attr]
        if not stack.sandbox.pending(SYSTEM) and stack.queue_depth(stack.queue_url) == 0:  # type: ignore[union-attr]
            break
        time.sleep(max(0.0, POLL_INTERVAL - (time.monotonic() - tick)))  # the schedule's pace
    seconds = time.monotonic() - started

    receiver, sandbox = stack.receiver, stack.sandbox
    assert receiver is not None and sandbox is not None
    delivered, marked = receiver.delivered_ids(), sandbox.exported(SYSTEM)
    lost = orders - (delivered & marked)
    figures = {
        "orders": len(orders),
        "lost": len(lost),
        "duplicates": receiver.duplicates(),
        "ambiguous_502": receiver.ambiguous,
        "amplification": round(enqueued / len(orders), 3),
        "polls": polls,
        "failed_polls": poll_failures,
        "forwarder_invocations": source.stats.invocations,
        "redelivered_records": source.stats.failures,
        "dead_lettered": stack.queue_depth(stack.dlq_url),
        "mark_calls": len(sandbox.mark_calls),
        "target_posts": receiver.attempts,
        "traede_requests": len(sandbox.requests_log),
        "seconds": round(seconds, 1),
    }
    print("\nSOAK " + json.dumps(figures))

    assert not lost, f"lost orders: {sorted(lost)}"
    assert all(len(keys) == 1 for keys in receiver.keys_by_order().values())
    assert receiver.duplicates() <= receiver.ambiguous
    assert marked <= delivered  # nothing marked that the receiving system did not accept
    assert all(len(call) <= MAX_MARK_BATCH for call in sandbox.mark_calls)
    assert enqueued / len(orders) <= 1.2
    assert figures["dead_lettered"] >= 1  # the DLQ path was exercised, and nothing was lost
