"""`ForwarderBatchSize` above 10: the local event source gathers a batch as Lambda's poller does.

SQS hands out at most 10 messages a receive, so a batch of 30 takes three; Lambda also cuts a
batch at its 6 MB payload limit, and a message left out goes back to the queue at once.
"""

from __future__ import annotations

import json

import pytest

from traede_local import lambda_runtime
from traede_local.local_stack import MakeStack

SYSTEM = "local-erp"


def test_a_batch_of_thirty_is_gathered_from_three_receives_and_marked_in_three_calls(make_stack: MakeStack) -> None:
    stack = make_stack(orders=48, parameters={"ForwarderBatchSize": "30"})
    assert stack.sandbox is not None and stack.receiver is not None
    pending = stack.sandbox.pending(SYSTEM)
    assert len(pending) >= 30
    assert stack.poll()["enqueued"] == len(pending)
    source = stack.event_source()
    assert source.poll_once() == 30  # one invocation
    assert source.stats.invocations == 1 and source.stats.failures == 0
    assert len(stack.receiver.delivered_ids()) == 30
    assert [len(call) for call in stack.sandbox.mark_calls] == [10, 10, 10]
    assert len(stack.sandbox.exported(SYSTEM)) == 30


def test_a_batch_stops_at_the_payload_limit_and_the_rest_is_next(
    make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(orders=16, parameters={"ForwarderBatchSize": "20"}, visibility_timeout=300)
    assert stack.sandbox is not None
    pending = stack.sandbox.pending(SYSTEM)
    assert stack.poll()["enqueued"] == len(pending) > 4
    source = stack.event_source()
    one = (
        len(json.dumps(lambda_runtime.sqs_event([{"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}], "arn")))
        + 4096
    )
    monkeypatch.setattr(lambda_runtime, "MAX_EVENT_BYTES", 4 * one)  # room for a few orders only
    first = source.poll_once()
    assert 1 <= first < len(pending)
    # What did not fit is visible again at once, not after the 300 s visibility timeout.
    assert source.poll_once() > 0
    monkeypatch.undo()
    source.drain(max_seconds=30)
    assert stack.sandbox.exported(SYSTEM) == set(pending)
