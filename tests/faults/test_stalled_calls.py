"""A call that never answers (S3, Secrets Manager) costs its record or its poll the
invocation's time at most, never the whole batch at Lambda's timeout.
"""

from __future__ import annotations

import time

import pytest

from helpers.stack import SYSTEM, HangingServer, eligible, poll_in_thread, send_message, send_order, stack_ledger
from traede_export.claim_check import Pointer
from traede_export.models import OrderRef, order_attributes
from traede_local.lambda_runtime import SqsEventSource
from traede_local.local_stack import LocalStack, MakeStack
from traede_local.seed import seed_large_orders

pytestmark = pytest.mark.faults


def one_batch_with_s3_stalled(
    make_stack: MakeStack, orders: int, pointer_ids: list[int]
) -> tuple[LocalStack, SqsEventSource, float, int]:
    """A small order and pointers to large ones whose S3 never answers, forwarded as one batch
    given 20 s (its deadline 10 s in); the stack, the event source, the seconds it took and the small order."""
    hanging = HangingServer()
    try:
        stack = make_stack(orders=orders, overrides={"AWS_ENDPOINT_URL_S3": hanging.url, "HTTP_READ_TIMEOUT": "1"})
        good = stack.sandbox.pending(SYSTEM)[0]
        send_order(stack, stack.sandbox.order(good))
        for order_id in pointer_ids:
            pointer = Pointer(stack.bucket, f"orders/{order_id}/v/abc.json").body()
            attributes = order_attributes(SYSTEM, OrderRef(order_id, "2026-01-02T03:04:05Z"), "run-1", None)
            send_message(stack, stack.queue_url, pointer, attributes)
        stack.forwarder.timeout = 20  # the deadline is 10 s in (TIME_SAFETY_MARGIN_SECONDS 10)
        source = stack.event_source()
        done, elapsed = poll_in_thread(source.poll_once, stack.forwarder.budget)
    finally:
        hanging.close()  # lets a stalled invocation end
    done.join(timeout=60)
    return stack, source, elapsed, good


def test_a_stalled_s3_read_fails_its_record_within_the_invocation_not_the_whole_batch_at_the_timeout(
    make_stack: MakeStack,
) -> None:
    """boto3's defaults (60 s read timeout, 5 attempts) let one stalled GetObject outlive the
    forwarder's 60 s: Lambda kills the invocation and every record of the batch comes back."""
    stack, source, elapsed, good = one_batch_with_s3_stalled(make_stack, orders=4, pointer_ids=[990002])
    sandbox, receiver = stack.sandbox, stack.receiver
    assert elapsed < stack.forwarder.budget and source.stats.timeouts == 0, elapsed
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)
    assert source.stats.failures == 1  # the large order alone comes back


def test_stalled_s3_reads_of_several_large_orders_cost_the_batch_one_read_not_one_each(make_stack: MakeStack) -> None:
    """Pointers were read one after another: five stalled reads (3 attempts each) outlived the
    deadline, so the small order in the same batch was not even started."""
    ids = [990010 + n for n in range(5)]
    stack, source, elapsed, good = one_batch_with_s3_stalled(make_stack, orders=10, pointer_ids=ids)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert source.stats.records == 6 and source.stats.timeouts == 0, (elapsed, source.stats)
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)
    assert source.stats.failures == 5  # the large orders alone come back


def test_a_poll_with_stalled_s3_uploads_stops_at_its_deadline_and_gives_the_leases_back(make_stack: MakeStack) -> None:
    """Uploads went on past the poller's deadline (it was checked only between pages): Lambda
    would kill the run with the page's leases held, so those orders wait out the 2 h lease."""
    hanging = HangingServer()
    try:
        stack = make_stack(orders=0, overrides={"AWS_ENDPOINT_URL_S3": hanging.url, "HTTP_READ_TIMEOUT": "1"})
        stack.sandbox.add_orders(seed_large_orders(60, start_id=8001, size=300 * 1024))
        stack.poller.timeout = 22  # the deadline is 12 s in (TIME_SAFETY_MARGIN_SECONDS 10); 60 x 3 s / 8 > 22 s
        started = time.monotonic()
        result = stack.poll()
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    print(f"\npoll with stalled uploads: {elapsed:.1f} s of {stack.poller.budget} s")
    assert elapsed < stack.poller.budget, elapsed
    assert (result["enqueued"], result["failed"]) == (0, 60), result
    entries = stack_ledger(stack)
    assert len(entries) == 60 and all(e.lease_until == 0 for e in entries)  # the next poll tries again


def test_a_stalled_secrets_manager_fails_the_invocation_within_its_time_not_at_lambdas_timeout(
    make_stack: MakeStack,
) -> None:
    """boto3's defaults (60 s read timeout, several attempts) let one stalled GetSecretValue outlive
    the forwarder, with every POST thread waiting behind the reader's lock: a Lambda timeout instead
    of the CredentialsError that names the secret."""
    hanging = HangingServer()
    try:
        stack = make_stack(
            orders=3, overrides={"AWS_ENDPOINT_URL_SECRETS_MANAGER": hanging.url, "HTTP_READ_TIMEOUT": "1"}
        )
        send_order(stack, stack.sandbox.order(eligible(stack)[0]))
        stack.forwarder.timeout = 20
        source = stack.event_source()
        done, elapsed = poll_in_thread(source.poll_once, stack.forwarder.budget)
    finally:
        hanging.close()
    done.join(timeout=60)
    assert elapsed < stack.forwarder.budget and source.stats.timeouts == 0, elapsed
    assert source.stats.crashes == 1  # CredentialsError fails the invocation: ForwarderErrorsAlarm
    assert stack.receiver.delivered_ids() == set()
