"""The HTTP edges: redirects, 409 while a request is in progress, odd characters.

Real loopback servers throughout: the receiving system, the Traede sandbox, and `OtherHost`, a
second server on another port that records whatever reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.http import HeaderAuth, build_session, describe_redirect
from traede_export.ledger import ExportLedger
from traede_export.models import Attr, OrderRef, order_attributes
from traede_export.target import Outcome, TargetClient
from traede_export.traede import TraedeClient
from traede_local.faults import OtherHost
from traede_local.local_stack import LocalStack, MakeStack
from traede_local.receiver import ReceivingSystem
from traede_local.sandbox import TraedeSandbox
from traede_local.seed import seed_orders

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
BODY = '{"id": 7, "updated_at": "2026-01-01 00:00:00"}'
API_KEY = "key-do-not-forward-0123456789"
REDIRECTS = [301, 302, 307, 308]


@pytest.fixture
def receiver() -> Iterator[ReceivingSystem]:
    with ReceivingSystem(required_headers={"X-Api-Key": API_KEY}) as server:
        yield server


@pytest.fixture
def other() -> Iterator[OtherHost]:
    # Answers 200 to anything: followed, a redirect would look like a successful delivery.
    with OtherHost(body={"ok": True, "production_orders": []}) as server:
        yield server


def target_client(receiver: ReceivingSystem, **kwargs: Any) -> TargetClient:
    session = build_session()
    session.auth = HeaderAuth(lambda: {"X-Api-Key": API_KEY})
    return TargetClient(session, receiver.url, timeout=(0.5, 0.3), **kwargs)


def ledger(stack: LocalStack) -> ExportLedger:
    return ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM)


# ---------------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", REDIRECTS)
def test_redirect_from_the_erp_is_a_rejection_and_never_followed(
    receiver: ReceivingSystem, other: OtherHost, status: int
) -> None:
    receiver.redirect = (status, other.url + "/login/orders?session=s3cr3t-query")
    result = target_client(receiver).deliver(BODY, "key-1")
    assert result.outcome is Outcome.REJECTED and not result.accepted
    assert result.status == status
    assert str(status) in result.reason and "TARGET_URL" in result.reason
    assert other.url + "/login/orders" in result.reason  # where it points, so the operator can fix the URL
    assert "s3cr3t-query" not in result.reason  # never the query string (it may carry a token)
    assert other.requests == []  # not followed: no request, no X-Api-Key on another host
    assert receiver.attempts == 1  # and not retried
    assert receiver.deliveries == []


def test_relative_redirect_names_the_resolved_location(receiver: ReceivingSystem) -> None:
    receiver.redirect = (301, "/orders/?x=1")
    result = target_client(receiver).deliver(BODY, "key-1")
    assert result.outcome is Outcome.REJECTED
    assert receiver.url + "/" in result.reason and "x=1" not in result.reason


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_session_never_follows_even_when_asked(receiver: ReceivingSystem, other: OtherHost, method: str) -> None:
    receiver.redirect = (302, "https://user:pw@" + other.url.removeprefix("http://") + "/x?q=1#frag")
    response = build_session().request(method, receiver.url, allow_redirects=True, timeout=2)
    assert response.status_code == 302 and response.history == []
    assert other.requests == []
    assert describe_redirect(response) == f"HTTP 302 redirect to https://{other.url.removeprefix('http://')}/x"


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_from_traede_is_a_traede_error_and_never_followed(other: OtherHost, status: int) -> None:
    with TraedeSandbox(seed_orders(3), access_token="tok-abc", app_key="app-def") as sandbox:
        sandbox.redirect = (status, other.url + "/v10/production-orders/export?sig=zzz")
        session = build_session()
        session.auth = HeaderAuth(lambda: {"Authorization": "Bearer tok-abc", "X-Traede-App-Key": "app-def"})
        client = TraedeClient(session, sandbox.url, SYSTEM, timeout=(0.5, 1.0))
        with pytest.raises(TraedeError) as export_error:
            client.export_page(ExportOptions(), 0)
        with pytest.raises(TraedeError) as mark_error:
            client.mark_as_exported([(1001, "note")])
    for error in (export_error.value, mark_error.value):
        text = str(error)
        assert str(status) in text and "TRAEDE_API_URL" in text and "redirect" in text
        assert "sig=zzz" not in text
    assert other.requests == []  # neither the app key nor the token went to the other host


@pytest.mark.parametrize("status", REDIRECTS)
def test_pipeline_never_marks_a_redirected_delivery(make_stack: MakeStack, other: OtherHost, status: int) -> None:
    stack: LocalStack = make_stack(orders=4)
    orders = set(stack.sandbox.pending(SYSTEM))
    stack.receiver.redirect = (status, other.url + "/orders?token=t0ken")
    stack.poll()
    stack.event_source().drain(max_seconds=60)
    assert stack.sandbox.exported(SYSTEM) == set()
    assert stack.receiver.deliveries == []
    assert other.requests == []
    entries = ledger(stack).get_many(orders)
    assert all(not e.delivered_version for e in entries.values())  # never counted as delivered
    dead = stack.dlq_messages()
    assert {int(m["MessageAttributes"][Attr.ORDER_ID]["StringValue"]) for m in dead} == orders
    for m in dead:
        reason = m["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]
        assert str(status) in reason and "TARGET_URL" in reason and "t0ken" not in reason


# ------------------------------------------------------------------------ 409 is not delivery


def test_conflict_while_in_progress_is_not_delivery(receiver: ReceivingSystem) -> None:
    # The first request is held past the client's read timeout and then fails; the client's own
    # retry, with the same key, meets it in progress and gets 409.
    receiver.in_progress_seconds = 1.0
    result = target_client(receiver).deliver(BODY, "key-1")
    assert receiver.conflicts >= 1
    assert result.outcome is Outcome.FAILED and result.status == 409  # transient: the queue retries
    assert not result.accepted
    assert receiver.deliveries == []


def test_conflict_as_delivered_is_an_explicit_opt_in(receiver: ReceivingSystem) -> None:
    receiver.conflict_on_duplicate = True  # this ERP's 409 really means "already stored"
    assert target_client(receiver).deliver(BODY, "key-1").outcome is Outcome.DELIVERED
    opted_in = target_client(receiver, conflict_is_delivered=True).deliver(BODY, "key-1")
    assert opted_in.outcome is Outcome.ALREADY_DELIVERED
    default = target_client(receiver).deliver(BODY, "key-1")
    assert default.outcome is Outcome.FAILED and default.status == 409


def test_pipeline_does_not_mark_on_a_conflict(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3, overrides={"HTTP_READ_TIMEOUT": "0.3"})
    orders = set(stack.sandbox.pending(SYSTEM))
    receiver = stack.receiver
    receiver.in_progress_seconds = 1.5
    stack.poll()
    source = stack.event_source()
    source.poll_once()
    assert receiver.conflicts >= len(orders)
    assert stack.sandbox.exported(SYSTEM) == set()
    assert source.stats.failures == len(orders)  # back to the queue, not to the DLQ
    assert all(not e.delivered_version for e in ledger(stack).get_many(orders).values())

    # The queue's later retry finds the key free and delivers, once.
    source.drain(max_seconds=60)
    assert receiver.delivered_ids() == orders
    assert stack.sandbox.exported(SYSTEM) == orders
    assert receiver.duplicates() == 0


# ----------------------------------------------------------------------- odd characters


def test_a_key_that_is_not_latin1_fails_that_record_alone(receiver: ReceivingSystem) -> None:
    client = target_client(receiver)
    good = client.deliver(BODY, "traede:local-erp:7:2026-01-01T00:00:00.000000Z")
    bad = client.deliver(BODY, "traede:local-erp:7:2026-01-01Δ")
    also_good = client.deliver(BODY.replace("7", "8"), "traede:local-erp:8:2026-01-01T00:00:00.000000Z")
    assert good.outcome is Outcome.DELIVERED and also_good.outcome is Outcome.DELIVERED
    assert bad.outcome is Outcome.REJECTED  # retrying cannot help
    assert "Idempotency-Key" in bad.reason and "latin-1" in bad.reason
    assert receiver.delivered_ids() == {7, 8}


def test_a_control_character_in_the_key_fails_that_record_alone(receiver: ReceivingSystem) -> None:
    result = target_client(receiver).deliver(BODY, "traede:local-erp:7:2026\r\nX-Injected: 1")
    assert result.outcome is Outcome.REJECTED and "Idempotency-Key" in result.reason
    assert receiver.attempts == 0


def test_an_odd_reexport_instant_fails_one_record_not_the_batch(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4)
    orders = stack.sandbox.order_list()
    good, odd = orders[:3], orders[3]
    entries: list[Any] = []  # boto3-stubs wants its TypedDict; a plain dict is what SQS takes
    for i, order in enumerate(orders):
        ref = OrderRef.from_order(order)
        since = "2026-03-01 Δ 10:00" if order is odd else None
        attributes = order_attributes(SYSTEM, ref, "run-1", since)
        entries.append({"Id": str(i), "MessageBody": json.dumps(order), "MessageAttributes": attributes})
    stack.sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=entries)
    source = stack.event_source()
    source.poll_once()
    assert source.stats.records == 4 and source.stats.crashes == 0
    assert source.stats.failures <= 1  # only the odd record, if anything, comes back
    assert stack.receiver.delivered_ids() == {o["id"] for o in good}
    assert stack.sandbox.exported(SYSTEM) == {o["id"] for o in good}
