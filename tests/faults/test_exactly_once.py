"""Exactly-once effect under the faults Lambda and SQS really produce."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from traede_local.faults import ReceiverFaults
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def eligible(stack: LocalStack) -> set[int]:
    return set(stack.sandbox.pending(SYSTEM))


def test_mark_failure_after_delivery_retries_only_the_mark(make_stack: MakeStack) -> None:
    # Visibility longer than an invocation with its mark retries, as 6x the timeout is in AWS.
    stack: LocalStack = make_stack(orders=30, visibility_timeout=6)
    orders = eligible(stack)
    stack.poll()
    stack.sandbox.faults.error_rate = 1.0  # every mark call fails
    source = stack.event_source()
    while stack.receiver.delivered_ids() != orders and source.stats.invocations < 20:
        source.poll_once()
    assert source.stats.failures == source.stats.records  # delivered, not marked: all come back
    assert stack.receiver.delivered_ids() == orders
    assert stack.sandbox.exported(SYSTEM) == set()
    assert stack.receiver.duplicates() == 0  # redeliveries were not re-posted
    posts = stack.receiver.attempts

    stack.sandbox.faults.error_rate = 0.0
    source.drain()
    assert stack.receiver.attempts == posts  # no second delivery
    assert stack.sandbox.exported(SYSTEM) == orders
    assert stack.receiver.duplicates() == 0


def test_lambda_timeout_mid_batch_posts_again_only_what_it_cut_off(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(
        orders=14,
        target_faults=ReceiverFaults(latency=0.25),
        overrides={"FORWARD_CONCURRENCY": "2", "TIME_SAFETY_MARGIN_SECONDS": "0"},
    )
    orders = eligible(stack)
    stack.poll()
    stack.forwarder.cold_start()  # outside the invocation's time, as in Lambda
    stack.forwarder.timeout = 0.6  # ten deliveries two at a time take ~1.25 s
    source = stack.event_source()
    source.poll_once()
    assert source.stats.timeouts == 1
    first = stack.receiver.delivered_ids()
    assert 0 < len(first) < len(orders)  # the deadline stopped new deliveries part-way

    stack.forwarder.timeout = 30
    source.drain()
    assert stack.receiver.delivered_ids() == orders == stack.sandbox.exported(SYSTEM)
    # The POSTs in flight when Lambda's time ran out were cut off (no POST outlives its invocation):
    # the ERP may have stored them unanswered, and their retry, under the same Idempotency-Key, is
    # the only second copy. At most FORWARD_CONCURRENCY of them.
    assert stack.receiver.duplicates() <= 2
    assert all(stack.receiver.attempts_for(o) <= 2 for o in orders)
    assert all(len(keys) == 1 for keys in stack.receiver.keys_by_order().values())


def test_forwarder_reports_records_it_did_not_start(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=14, overrides={"TIME_SAFETY_MARGIN_SECONDS": "5"})
    orders = eligible(stack)
    stack.poll()
    stack.forwarder.timeout = 4  # less than the margin: nothing may start
    source = stack.event_source()
    source.poll_once()
    assert source.stats.failures == source.stats.records > 0
    assert stack.receiver.attempts == 0
    stack.forwarder.timeout = 30
    source.drain()
    assert stack.receiver.delivered_ids() == orders


def test_two_overlapping_polls_enqueue_each_order_once(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=300)
    orders = eligible(stack)
    second = LocalFunction(stack.poller.spec, overrides=dict(stack.poller.overrides))
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda f=f: results.append(f.invoke({}))) for f in (stack.poller, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["enqueued"] for r in results) == len(orders)
    assert sum(r["skipped"] for r in results) == sum(r["fetched"] for r in results) - len(orders)
    assert stack.queue_depth(stack.queue_url) == len(orders)


def test_an_edit_while_in_flight_delivers_only_the_newest_version(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=5)
    orders = sorted(eligible(stack))
    edited = orders[0]
    stack.poll()
    new_updated_at = stack.sandbox.edit(edited)
    again = stack.poll()
    assert again["enqueued"] == 1 and again["skipped"] == len(orders) - 1  # only the new version
    stack.event_source().drain()
    bodies = [d.body for d in stack.receiver.deliveries if d.order_id == edited]
    assert [b["updated_at"] for b in bodies] == [new_updated_at]
    assert stack.sandbox.exported(SYSTEM) == set(orders)
    assert stack.sandbox.pending(SYSTEM) == []


def test_an_older_version_never_overwrites_a_newer_delivery(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3)
    order = stack.sandbox.order(sorted(eligible(stack))[0])
    old = json.dumps(order)
    stack.sandbox.edit(order["id"])
    new_updated_at = stack.sandbox.order(order["id"])["updated_at"]
    stack.poll()
    stack.event_source().drain()
    # An operator replays the stale file afterwards: it must not reach the ERP.
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=old)
    stack.event_source().drain()
    bodies = [d.body for d in stack.receiver.deliveries if d.order_id == order["id"]]
    assert [b["updated_at"] for b in bodies] == [new_updated_at]


def test_poller_stops_in_time_and_the_next_run_continues(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=700, overrides={"TIME_SAFETY_MARGIN_SECONDS": "0"})
    orders = eligible(stack)
    stack.poller.timeout = 0.3
    first = stack.poll()
    assert first["stopped_early"] and 0 < first["enqueued"] < len(orders)
    stack.poller.timeout = 60
    second = stack.poll()
    assert second["skipped"] == first["enqueued"]
    assert first["enqueued"] + second["enqueued"] == len(orders)
    assert stack.queue_depth(stack.queue_url) == len(orders)


def test_poison_message_reaches_the_dlq_after_max_receives_with_attempts_logged(
    make_stack: MakeStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack: LocalStack = make_stack(orders=4)
    orders = eligible(stack)
    stuck = sorted(orders)[0]
    stack.receiver.fail_ids = {stuck}
    stack.poll()
    stack.event_source().drain()
    parked = stack.dlq_messages()
    assert [json.loads(m["Body"])["id"] for m in parked] == [stuck]
    assert stuck not in stack.sandbox.exported(SYSTEM)
    failures = [r.__dict__ for r in caplog.records if r.__dict__.get("outcome") == "failed"]
    attempts = sorted(f["attempt"] for f in failures if f["order_id"] == stuck)
    assert attempts == [1, 2, 3, 4, 5]
    assert stack.sandbox.exported(SYSTEM) == orders - {stuck}
