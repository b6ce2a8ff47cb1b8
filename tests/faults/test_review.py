"""Defects found by an adversarial review of the export contract (issue 10), each named after its case.

Real handlers against moto, DynamoDB Local and the local HTTP servers, as in test_contract.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from test_contract import SYSTEM, dlq_reasons, eligible, emitted_metrics, send_order

from traede_export.claim_check import ClaimCheck
from traede_export.config import ExportOptions, HttpSettings
from traede_export.http import HeaderAuth, build_session
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef, epoch_ms, idempotency_key, version_of
from traede_export.poll import Poller
from traede_export.queue import QueueWriter
from traede_export.traede import TraedeClient
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack

pytestmark = pytest.mark.faults

# Pass the regex, but overflow on the way to UTC or are no date at all.
BAD_INSTANTS = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:30:00+05:00", "2026-13-01 10:00:00", "0000-01-01 10:00:00"]


def ledger_of(stack: LocalStack) -> ExportLedger:
    return ExportLedger.on_dynamodb(stack.dynamodb, stack.table, SYSTEM)


def put_raw(stack: LocalStack, order_id: int, **fields: dict[str, str]) -> None:
    """An item as another release (or a crashed container) left it."""
    item = {"pk": {"S": f"order#{SYSTEM}#{order_id}"}, **fields}
    stack.dynamodb.put_item(TableName=stack.table, Item=item)


# ---------------------------------------------------------------- 1: out-of-range instants


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


# ---------------------------------------------------------------- 2: SendMessageBatch entry ids


class RecordingSqs:
    """The real (moto) SQS client, recording each SendMessageBatch's entry ids."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.ids: list[list[str]] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.ids.append([e["Id"] for e in kwargs["Entries"]])
        return self._sqs.send_message_batch(**kwargs)


def test_send_batch_entry_ids_are_indexes_within_the_batch(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=25)
    sqs = RecordingSqs(stack.sqs)
    poller = Poller(
        traede=_traede_client(stack),
        ledger=ledger_of(stack),
        queue=QueueWriter(sqs, stack.queue_url),
        dlq=QueueWriter(stack.sqs, stack.dlq_url),
        claims=ClaimCheck(stack.s3, stack.bucket),
        system_id=SYSTEM,
        options=_options(stack),
        lease_seconds=60,
    )
    result = poller.run("run-1")
    assert result.enqueued == len(eligible(stack)) and result.failed == 0
    assert sqs.ids and all(ids == [str(i) for i in range(len(ids))] for ids in sqs.ids)


def _traede_client(stack: LocalStack) -> TraedeClient:
    assert stack.sandbox is not None
    creds = stack.credentials["traede"]
    session = build_session()
    headers = {"Authorization": f"Bearer {creds['access_token']}", "X-Traede-App-Key": creds["app_key"]}
    session.auth = HeaderAuth(lambda: headers)
    return TraedeClient(session, stack.sandbox.url, SYSTEM, timeout=HttpSettings().timeout)


def _options(stack: LocalStack) -> ExportOptions:
    return ExportOptions()


# ---------------------------------------------------------------- 3: re-entering one's own delivery lease


def test_a_delivery_lease_is_joined_by_no_copy_until_it_runs_out(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order = sandbox.order(eligible(stack)[0])
    ref = OrderRef.from_order(order)
    scheduled_key = idempotency_key(SYSTEM, ref)
    # A container crashed mid-POST of the scheduled copy (or its POST is still running): its lease is held.
    put_raw(
        stack,
        ref.order_id,
        delivering_version={"S": ref.version},
        delivering_key={"S": scheduled_key},
        delivering_until={"N": str(int(time.time()) + 2)},
        delivering_token={"S": "the-crashed-batch"},
    )
    send_order(stack, order, reexport_since="2020-01-01T00:00:00Z")  # another key for the same version: waits
    send_order(stack, order)  # the retry of the crashed message waits too: its POST may still be live
    stack.event_source().poll_once()
    assert receiver.attempts == 0
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    time.sleep(3)  # the lease (the invocation's time plus a margin) runs out
    send_order(stack, order)
    stack.event_source().drain()
    assert receiver.keys_by_order() == {ref.order_id: {scheduled_key}}
    assert ref.order_id in sandbox.exported(SYSTEM)


# ---------------------------------------------------------------- 4: years below 1000


def test_version_of_pads_years_below_1000_so_text_order_is_time_order() -> None:
    assert version_of("0999-12-31T23:59:59Z") == "0999-12-31T23:59:59.000000Z"
    assert version_of("0999-12-31T23:59:59Z") < version_of("1000-01-01T00:00:00Z")


# ---------------------------------------------------------------- 5: bodies that defeat the JSON parser


def test_deeply_nested_or_huge_int_bodies_are_unreadable_not_a_crash(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    good = sandbox.order(eligible(stack)[0])
    for body in ("[" * 200_000 + "]" * 200_000, '{"id": ' + "9" * 5000 + "}"):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    send_order(stack, good)
    source = stack.event_source()
    source.drain()
    assert source.stats.failures == 0
    assert receiver.delivered_ids() == {good["id"]}
    parked = stack.dlq_messages()
    assert len(parked) == 2
    assert all("not a production order" in m["MessageAttributes"]["failure_reason"]["StringValue"] for m in parked)


# ---------------------------------------------------------------- 6: configuration errors are not refusals


@pytest.mark.parametrize("fault", ["unauthorised", "redirect"])
def test_a_configuration_error_is_not_remembered_as_a_refusal_of_the_version(make_stack: Any, fault: str) -> None:
    stack: LocalStack = make_stack(orders=3, overrides={"IN_FLIGHT_LEASE_SECONDS": "1"})
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    order_id = eligible(stack)[0]
    saved = dict(receiver.required_headers)
    if fault == "unauthorised":
        receiver.required_headers = {"X-Api-Key": "rotated"}  # the ERP's key was rotated: 401
    else:
        receiver.redirect = (301, receiver.url + "/")
    stack.poll()
    stack.event_source().drain()
    assert order_id not in sandbox.exported(SYSTEM)
    entry = ledger_of(stack).get_many([order_id])[order_id]
    assert entry.rejected_version == ""
    receiver.required_headers, receiver.redirect = saved, None  # the operator fixes the configuration
    time.sleep(2.1)  # the poll's lease expires (whole seconds)
    stack.poll()
    stack.event_source().drain()
    assert order_id in sandbox.exported(SYSTEM)


# ---------------------------------------------------------------- 7: a delivery supersedes an old refusal


def test_record_delivery_clears_an_old_rejection(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=1)
    ledger = ledger_of(stack)
    ref = OrderRef(order_id=77, updated_at="2026-01-05T10:00:00Z")
    ledger.record_rejection(ref, "HTTP 422")
    # An operator's redrive got through.
    assert ledger.record_deliveries([(ref, idempotency_key(SYSTEM, ref))]) == [True]
    assert ledger.get_many([77])[77].rejected_version == ""
    # Its mark failed: a later poll must be able to send it again.
    assert ledger.claim(ref, "run-2", lease_seconds=60)


# ---------------------------------------------------------------- 8: items written by the previous release


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


# ---------------------------------------------------------------- 9: re-read the ledger before marking


def delivered_and_held(stack: LocalStack) -> tuple[int, int, threading.Thread]:
    """Container A delivers order x's version and then waits 2.5 s on its slow batch mate y before marking."""
    sandbox, receiver = stack.sandbox, stack.receiver
    x, y = eligible(stack)[:2]
    v1, slow = sandbox.order(x), sandbox.order(y)
    receiver.delays[idempotency_key(SYSTEM, OrderRef.from_order(slow))] = 2.5  # holds container A's batch
    send_order(stack, v1)
    send_order(stack, slow)
    first = threading.Thread(target=stack.event_source().poll_once)
    first.start()
    deadline = time.monotonic() + 2
    while x not in receiver.delivered_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert x in receiver.delivered_ids()  # A delivered v1 and waits on its batch mate
    return x, y, first


def test_no_mark_on_the_strength_of_an_older_version_delivered_meanwhile(make_stack: Any) -> None:
    stack: LocalStack = make_stack(orders=3, visibility_timeout=30)
    sandbox, receiver = stack.sandbox, stack.receiver
    x, y, first = delivered_and_held(stack)
    sandbox.edit(x)
    send_order(stack, sandbox.order(x))
    sandbox.faults.error_rate = 1.0  # B delivers v2, but its mark fails
    second = LocalFunction(stack.forwarder.spec, overrides=dict(stack.forwarder.overrides))
    stack.event_source(second).poll_once()
    sandbox.faults.error_rate = 0.0
    assert len(receiver.keys_by_order()[x]) == 2
    first.join()
    assert x not in sandbox.exported(SYSTEM)  # A must not mark on v1's strength
    assert y in sandbox.exported(SYSTEM)


# ---------------------------------------------------------------- a: versions of an older release


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


# ---------------------------------------------------------------- b: a server that ignores `page`


def test_a_stalled_page_is_counted(make_stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=60, paging="ignore_page")
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    sandbox.server_page_size = 20
    receiver.reject_ids = set(eligible(stack))  # the ERP refuses everything the page shows
    stack.poll()
    stack.event_source().drain()
    capsys.readouterr()
    result = stack.poll()  # the same full page again, all refused: the rest is never reached
    assert result["enqueued"] == 0
    assert emitted_metrics(capsys.readouterr().out).get("PagingStalled") == 1


# ---------------------------------------------------------------- c: an updated_at that goes backwards


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
