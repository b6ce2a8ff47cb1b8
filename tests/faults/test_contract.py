"""The export contract at its edges: each test is named after the edge it guards.

Every test runs the real handlers against moto and the local HTTP servers.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from helpers.stack import SYSTEM, dlq_reasons, eligible, emitted_metrics, send_order
from traede_export.models import Attr, OrderRef, idempotency_key
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops.ops import Target, redrive

pytestmark = pytest.mark.faults


# ---------------------------------------------------------------- never mark what did not arrive


def test_replayed_copy_of_a_marked_version_does_not_swallow_a_newer_edit(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4)
    sandbox = stack.sandbox
    order_id = eligible(stack)[0]
    old = sandbox.order(order_id)
    stack.poll()
    stack.event_source().drain()
    assert order_id in sandbox.exported(SYSTEM) and eligible(stack) == []

    sandbox.edit(order_id)  # an edit no poll has seen yet: pending again
    send_order(stack, old)  # an operator replays the old file, or SQS hands out a stale duplicate
    stack.event_source().drain()
    assert eligible(stack) == [order_id]  # the edit is still waiting for the next poll
    stack.poll()
    stack.event_source().drain()
    bodies = [d.body["updated_at"] for d in stack.receiver.deliveries if d.order_id == order_id]
    assert bodies == [old["updated_at"], sandbox.order(order_id)["updated_at"]]
    assert eligible(stack) == []


def test_stale_copy_in_a_batch_does_not_mark_when_the_newer_delivery_fails(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    order_id = eligible(stack)[0]
    source = stack.event_source()
    send_order(stack, sandbox.order(order_id))
    sandbox.faults.error_rate = 1.0  # v1 is delivered, but its mark fails: it comes back
    source.poll_once()
    sandbox.faults.error_rate = 0.0
    assert receiver.delivered_ids() == {order_id} and sandbox.exported(SYSTEM) == set()

    sandbox.edit(order_id)
    send_order(stack, sandbox.order(order_id))
    receiver.fail_ids = {order_id}  # v2 cannot be stored right now
    time.sleep(1.2)  # the failed v1 message becomes visible again (visibility 1 s)
    handled = 0
    while handled < 2:
        handled += source.poll_once()
    assert sandbox.exported(SYSTEM) == set()  # marking on v1's strength would swallow v2
    assert order_id in eligible(stack)


# ---------------------------------------------------------------- never stall in silence


def test_ten_orders_over_1_mib_in_total_are_enqueued(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=12)
    sandbox = stack.sandbox
    padded = []
    for order in sandbox.order_list():
        order["notes"] = "x" * 150_000  # ordinary with lines, products and variants included
        padded.append(order)
    sandbox.add_orders(padded)
    expected = eligible(stack)
    result = stack.poll()
    assert result["failed"] == 0
    assert result["enqueued"] == len(expected) == stack.queue_depth(stack.queue_url)
    stack.event_source().drain()
    assert stack.receiver.delivered_ids() == set(expected)


def test_orders_that_cannot_move_emit_metrics_and_park_with_a_reason(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=6)
    sandbox = stack.sandbox
    bad_version = {**sandbox.order(eligible(stack)[0]), "id": 9001, "updated_at": "Fri, 09 Jan 2026 10:00:00"}
    no_version = {**sandbox.order(eligible(stack)[0]), "id": 9002}
    no_version.pop("updated_at")
    too_big = {**sandbox.order(eligible(stack)[0]), "id": 9003, "notes": "x" * (1024 * 1024 + 10)}
    sandbox.add_orders([bad_version, no_version, too_big])
    capsys.readouterr()
    result = stack.poll()
    metrics = emitted_metrics(capsys.readouterr().out)
    assert result["invalid"] == 2 and metrics["InvalidOrders"] == 2
    # Over SQS's 1 MiB it once failed every poll; now it travels through the S3 claim-check.
    assert result["failed"] == 0 and metrics["EnqueueFailures"] == 0
    assert result["large"] == 1 and metrics["LargeOrdersEnqueued"] == 1
    reasons = dlq_reasons(stack)
    assert "updated_at" in reasons["9001"] and "updated_at" in reasons["9002"]
    # A second poll does not park the same invalid entries again, but still counts them.
    capsys.readouterr()
    stack.poll()
    assert emitted_metrics(capsys.readouterr().out)["InvalidOrders"] == 2
    assert len(stack.dlq_messages()) == 2


def test_a_short_page_is_not_the_end_and_stuck_orders_never_starve_the_rest(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=90)
    sandbox, receiver = stack.sandbox, stack.receiver
    sandbox.server_page_size = 20  # Traede pages by its own size while we ask for 60
    pending = eligible(stack)
    receiver.reject_ids = set(pending[:20])  # the whole first page is refused by the ERP
    result = stack.poll()
    assert result["fetched"] == len(pending)
    stack.event_source().drain()
    assert sandbox.exported(SYSTEM) == set(pending[20:])
    again = stack.poll()  # the refused front page comes back, the rest is done
    assert again["fetched"] == 20


def test_one_unmarkable_order_does_not_hold_back_its_batch_mates(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=14)
    sandbox = stack.sandbox
    pending = eligible(stack)
    assert len(pending) >= 10
    stack.poll()
    gone = pending[3]
    sandbox.delete(gone)  # deleted in Traede after the poll: its mark is refused (404 for the whole call)
    receiver = stack.receiver
    source = stack.event_source()
    batch: set[int] = set()
    while gone not in batch:  # SQS hands out messages in no fixed order
        before = receiver.delivered_ids()
        assert source.poll_once() > 0
        batch = receiver.delivered_ids() - before
    assert len(batch) > 1
    exported = sandbox.exported(SYSTEM)
    assert batch - {gone} <= exported and gone not in exported  # its batch mates are marked at once
    source.drain()
    assert sandbox.exported(SYSTEM) == set(pending) - {gone}
    assert "mark" in dlq_reasons(stack)[str(gone)]


def test_a_refused_order_is_not_reposted_until_it_changes_or_is_redriven(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=6, overrides={"IN_FLIGHT_LEASE_SECONDS": "1"})
    sandbox, receiver = stack.sandbox, stack.receiver
    refused = eligible(stack)[0]
    receiver.reject_ids = {refused}
    stack.poll()
    stack.event_source().drain()
    assert receiver.attempts_for(refused) == 1
    time.sleep(1.1)  # the lease has expired: only the refusal on record keeps later polls from re-posting it
    for _ in range(3):
        stack.poll()
        stack.event_source().drain()
    assert receiver.attempts_for(refused) == 1
    sandbox.edit(refused)  # a new version is tried again
    stack.poll()
    stack.event_source().drain()
    assert receiver.attempts_for(refused) == 2
    receiver.reject_ids = set()  # the ERP is fixed: the operator redrives what is parked
    redrive(Target(queue_url=stack.queue_url, dlq_url=stack.dlq_url), "batch", expected=1)
    stack.event_source().drain()
    assert refused in sandbox.exported(SYSTEM)


# ---------------------------------------------------------------- one version, one delivery


def test_a_reexport_does_not_double_an_in_flight_delivery(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=12)
    receiver = stack.receiver
    pending = eligible(stack)
    stack.poll()  # never-exported orders, still queued
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stack.poll({"not_exported_since": since})
    stack.event_source().drain()
    assert all(len(keys) == 1 for keys in receiver.keys_by_order().values())
    assert receiver.delivered_ids() == set(pending)

    time.sleep(1.1)  # whole seconds: everything above was delivered before the next instant
    later = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stack.poll({"not_exported_since": later})
    stack.event_source().drain()
    assert all(len(keys) == 2 for keys in receiver.keys_by_order().values())  # redelivered, new key


def test_an_unparseable_updated_at_is_invalid_and_parked(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    order = sandbox.order(eligible(stack)[0])
    send_order(stack, {**order, "updated_at": "Mon, 05 Jan 2026 10:00:00"})
    stack.event_source().drain()
    send_order(stack, {**order, "updated_at": "Fri, 09 Jan 2026 10:00:00"})  # a newer edit, as text "older"
    source = stack.event_source()
    source.drain()
    assert receiver.attempts == 0  # neither reached the ERP
    assert sandbox.exported(SYSTEM) == set()
    parked = stack.dlq_messages()
    assert len(parked) == 2 and source.stats.failures == 0  # parked at once, not after 5 receives
    assert all("updated_at" in m["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"] for m in parked)


def test_a_late_slow_delivery_of_an_older_version_never_wins(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3, overrides={"HTTP_READ_TIMEOUT": "5"})
    sandbox, receiver = stack.sandbox, stack.receiver
    order_id = eligible(stack)[0]
    v1 = sandbox.order(order_id)
    receiver.delays[idempotency_key(SYSTEM, OrderRef.from_order(v1))] = 1.5
    send_order(stack, v1)
    slow = threading.Thread(target=stack.event_source().poll_once)
    slow.start()
    time.sleep(0.5)  # v1's POST is in flight
    sandbox.edit(order_id)
    v2 = sandbox.order(order_id)
    send_order(stack, v2)
    second = LocalFunction(stack.forwarder.spec, overrides=dict(stack.forwarder.overrides))  # another container
    stack.event_source(second).poll_once()
    slow.join()
    stack.event_source().drain()
    stored = [d.body["updated_at"] for d in receiver.deliveries if d.order_id == order_id]
    assert stored[-1] == v2["updated_at"]  # the ERP ends with the newest version
    assert order_id not in eligible(stack)


def test_a_dead_lettered_reexport_keeps_its_meaning_after_redrive(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3)
    receiver = stack.receiver
    order_id = eligible(stack)[0]
    stack.poll()
    stack.event_source().drain()
    time.sleep(1.1)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    receiver.reject_ids = {order_id}
    stack.poll({"not_exported_since": since})
    stack.event_source().drain()
    (parked,) = stack.dlq_messages()
    attrs = parked["MessageAttributes"]
    assert attrs[Attr.REEXPORT]["StringValue"] == "true"
    assert attrs[Attr.REEXPORT_SINCE]["StringValue"] == since
    receiver.reject_ids = set()
    redrive(Target(queue_url=stack.queue_url, dlq_url=stack.dlq_url), "batch", expected=1)
    stack.event_source().drain()
    keys = receiver.keys_by_order()[order_id]
    assert len(keys) == 2 and any(":reexport:" in k for k in keys)
