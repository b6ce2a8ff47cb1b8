"""Soak: 300+ orders through repeated polls, redeliveries and the DLQ with ~30% faults per hop.

Run with `make soak` (`pytest -m soak -s`). It prints its figures as JSON (docs/benchmarks.md says what it asserts).
"""

from __future__ import annotations

import json
import time

import pytest

from traede_export.models import MAX_MARK_BATCH
from traede_local.faults import Faults, ReceiverFaults
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops.ops import Target, redrive

pytestmark = pytest.mark.soak
SYSTEM = "local-erp"
TIME_LIMIT = 420.0  # seconds; the loop stops by itself
POLL_INTERVAL = 5.0


def test_soak_exactly_once_under_heavy_faults(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(
        orders=400,
        large=6,  # about 1.5 MiB each: through the S3 claim-check, under the same faults
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
            "POWERTOOLS_METRICS_DISABLED": "true",  # keep the printed figures readable
        },
    )
    receiver, sandbox = stack.receiver, stack.sandbox
    # Traede pages by its own size (20) while we ask for 60; a short page is not the end.
    sandbox.server_page_size = 20
    # Ordinary large orders (lines, products and variants included): ten of them exceed the
    # 1 MiB that SQS allows for one SendMessageBatch.
    sandbox.add_orders([{**o, "notes": "x" * 150_000} for o in sandbox.order_list()[100:140]])
    orders = set(sandbox.pending(SYSTEM))
    assert len(orders) >= 300
    large = {o["id"] for o in sandbox.order_list() if o["id"] > 1400}
    assert len(large) == 6 and large <= orders
    ranked = sorted(orders)
    # A few orders the ERP refuses (503) for the first minute: they exhaust their receives,
    # land in the DLQ, and must still arrive once the lease lets a later poll re-enqueue them.
    poisoned = set(ranked[::64])
    receiver.fail_ids = set(poisoned)
    refused = ranked[5]  # the ERP rejects it for good (422): parked once, never re-posted, never marked
    receiver.reject_ids = {refused}
    unmarkable = ranked[7]  # deleted in Traede after the first poll: its mark is refused
    # IETF-style 409s: each key's first request is held past the client's read timeout and then
    # fails; the retry meanwhile gets 409 "in progress", which must not count as delivered.
    receiver.in_progress_seconds = 0.8
    redirect_window = (20.0, 35.0)  # the ERP moves its endpoint for a while; the operator redrives after
    source = stack.event_source()
    started = time.monotonic()
    polls = poll_failures = enqueued = redrives = 0
    while time.monotonic() - started < TIME_LIMIT:
        tick = time.monotonic()
        elapsed = tick - started
        receiver.redirect = (301, receiver.url + "/") if redirect_window[0] <= elapsed < redirect_window[1] else None
        try:
            result = stack.poll()
            enqueued += result["enqueued"]
        except Exception:  # the poll raised (Traede kept failing): the schedule retries it
            poll_failures += 1
        if polls == 0:
            sandbox.delete(unmarkable)
        polls += 1
        source.drain(max_seconds=30)
        if elapsed > 60:
            receiver.fail_ids = set()
            receiver.in_progress_seconds = 0.0
        if elapsed > redirect_window[1] and stack.queue_depth(stack.dlq_url) > 2:
            # The operator fixed the URL: redrive what the redirects parked.
            redrive(Target(queue_url=stack.queue_url, dlq_url=stack.dlq_url), "batch", expected=50)
            redrives += 1
        remaining = set(sandbox.pending(SYSTEM)) - {refused}
        if not remaining and stack.queue_depth(stack.queue_url) == 0:
            break
        time.sleep(max(0.0, POLL_INTERVAL - (time.monotonic() - tick)))  # the schedule's pace
    seconds = time.monotonic() - started

    delivered, marked = receiver.delivered_ids(), sandbox.exported(SYSTEM)
    lost = orders - {refused, unmarkable} - (delivered & marked)
    figures = {
        "orders": len(orders),
        "large_orders": len(large),
        "large_objects": len(stack.large_objects()),
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
        "conflicts_409": receiver.conflicts,
        "redrives": redrives,
        "refused_posts": receiver.attempts_for(refused),
        "target_posts": receiver.attempts,
        "traede_requests": len(sandbox.requests_log),
        "seconds": round(seconds, 1),
    }
    print("\nSOAK " + json.dumps(figures))

    assert not lost, f"lost orders: {sorted(lost)}"
    assert large <= delivered & marked
    assert all(len(keys) == 1 for keys in receiver.keys_by_order().values())
    assert receiver.duplicates() <= receiver.ambiguous
    assert marked <= delivered  # nothing marked that the receiving system did not accept
    assert all(len(call) <= MAX_MARK_BATCH for call in sandbox.mark_calls)
    assert enqueued / len(orders) <= 1.2
    assert figures["dead_lettered"] >= 1  # the DLQ path was exercised, and nothing was lost
    assert refused not in marked and unmarkable not in marked
    assert unmarkable in delivered
    assert receiver.conflicts > 0  # the 409 path was exercised
