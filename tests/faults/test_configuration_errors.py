"""A wrong URL is a configuration error: refused at cold start without showing its secret, or, when
only the request shows it, alarmed as a failed invocation and never held against an order.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import pytest

from traede_export.errors import ConfigError, ConfigurationError
from traede_export.ledger import ExportLedger
from traede_local.lambda_runtime import sqs_event
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
PASSWORD = "CANARYpw31"  # unique: a leak shows it however it is escaped
# User info in every form a person types it: a mistyped scheme separator hides it from urlparse's
# netloc, and a "/", "?" or "#" in the password moves the "@" into the path, query or fragment.
WITH_CREDENTIALS = [
    f"https//erp-user:{PASSWORD}@erp.example.com/orders",
    f"https:/erp-user:{PASSWORD}@erp.example.com/orders",
    f"https:erp-user:{PASSWORD}@erp.example.com/orders",
    f"https://erp-user:{PASSWORD}/x@erp.example.com/orders",
    f"https://erp-user:{PASSWORD}?x@erp.example.com/orders",
    f"https://erp-user:{PASSWORD}#x@erp.example.com/orders",
    f"https://erp-user:{PASSWORD}@erp.example.com/orders",
    f"https://{PASSWORD}@erp.example.com/orders",  # a token as the user name
]


@pytest.mark.parametrize("url", WITH_CREDENTIALS)
@pytest.mark.parametrize(("variable", "function"), [("TARGET_URL", "forwarder"), ("TRAEDE_API_URL", "poller")])
def test_a_url_with_user_info_fails_the_cold_start_without_showing_it(
    make_stack: MakeStack, caplog: pytest.LogCaptureFixture, url: str, variable: str, function: str
) -> None:
    stack: LocalStack = make_stack(orders=1, overrides={variable: url})
    with pytest.raises(ConfigError) as refused:
        getattr(stack, function).cold_start()
    message = str(refused.value)
    assert f"{variable} must not carry credentials" in message
    everything = "".join(traceback.format_exception(refused.value)) + caplog.text
    assert "CANARY" not in everything and "erp-user" not in everything


def test_a_request_that_cannot_be_sent_fails_the_invocation_and_is_never_a_refusal(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4)
    good_url = stack.forwarder.environment["TARGET_URL"]
    # Accepted at cold start, refused by requests for every order: a port beyond 65535.
    stack.forwarder.overrides["TARGET_URL"] = good_url.rsplit(":", 1)[0] + ":99999/orders"
    pending = set(stack.sandbox.pending(SYSTEM))
    stack.poll()

    messages = receive(stack)
    with pytest.raises(ConfigurationError) as failed:
        stack.forwarder.invoke(sqs_event(messages, "arn"))  # the whole invocation: ForwarderErrorsAlarm
    assert "TARGET_URL" in str(failed.value) and "99999" not in str(failed.value)
    # Nothing is held against the orders: no refusal remembered, nothing parked.
    entries = ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM).get_many(pending)
    assert all(e.rejected_version == "" for e in entries.values())
    assert stack.dlq_messages() == []

    # The operator fixes the URL: the same messages are delivered and marked, no redrive needed.
    stack.forwarder.overrides["TARGET_URL"] = good_url
    stack.forwarder.module = None  # the deploy: a new container
    stack.event_source().drain(max_seconds=30)
    assert stack.receiver.delivered_ids() == pending == stack.sandbox.exported(SYSTEM)
    assert stack.dlq_messages() == []
    assert stack.poll()["enqueued"] == 0  # and no poll skips them as refused later


def receive(stack: LocalStack) -> Sequence[Mapping[str, Any]]:
    answer = stack.sqs.receive_message(
        QueueUrl=stack.queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return answer["Messages"]
