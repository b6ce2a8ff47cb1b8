"""An adversarial review of the S3 claim-check for large orders: one test per defect it found.

Each test failed on the code it names and passes with the fix committed next to it. Real
handlers against moto (SQS, S3), DynamoDB Local and the local HTTP servers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from traede_export.claim_check import SIZE_ATTRIBUTE, Pointer, object_key
from traede_export.ledger import ExportLedger, LedgerEntry
from traede_export.models import Attr, OrderRef, order_attributes
from traede_local.lambda_runtime import SqsEventSource
from traede_local.local_stack import LocalStack, MakeStack
from traede_local.seed import seed_large_orders
from traede_local.template import load_template
from traede_ops import cli
from traede_ops.ops import Target, redrive

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def send_message(stack: LocalStack, url: str, body: str, attributes: dict[str, Any]) -> None:
    stack.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)


def put_pointer(stack: LocalStack, order_id: int, updated_at: str, data: bytes) -> str:
    """A pointer message to an object holding `data`, with the attributes the poller gives one."""
    ref = OrderRef(order_id, updated_at)
    key = object_key(order_id, ref.version, data)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data, ContentType="application/json")
    attributes = order_attributes(SYSTEM, ref, "run-attack", None)
    attributes[SIZE_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(len(data))}
    send_message(stack, stack.queue_url, Pointer(stack.bucket, key).body(), attributes)
    return key


def send_order(stack: LocalStack, order: dict[str, Any]) -> None:
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(order))


def test_a_large_order_object_that_is_not_utf8_fails_alone_and_does_not_sink_its_batch(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = sandbox.pending(SYSTEM)[0]
    send_order(stack, sandbox.order(good))
    put_pointer(stack, 990001, "2026-01-02T03:04:05Z", b'{"id": 990001, "note": "\xff\xfe"}')

    source = stack.event_source()
    assert source.poll_once() == 2  # one batch, one invocation
    assert source.stats.crashes == 0
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)
    (parked,) = stack.dlq_messages()  # the odd one, as the pointer it came as, with the reason
    assert Pointer.parse(parked["Body"]) is not None
    reason = parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]
    assert "UTF-8" in reason
    assert stack.queue_depth(stack.queue_url) == 0


def _grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) pairs of a role's inline policies, resources as CloudFormation wrote them."""
    pairs = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(a, json.dumps(r, sort_keys=True)) for a in actions for r in resources}
    return pairs


def test_a_deleted_large_order_object_reads_as_missing_in_aws_not_as_access_denied() -> None:
    """AWS answers GetObject on a missing key with 403 AccessDenied unless the caller may also
    s3:ListBucket the bucket (S3 API reference, GetObject, "Permissions"); only then is it 404
    NoSuchKey. moto always says NoSuchKey, so the missing-object test passes locally; deployed,
    a deleted or expired object would be read as a transient S3 error: no LargeOrderMissing
    metric or alarm, the lease kept for 2 h, and the pointer retried into the DLQ."""
    template = load_template()
    grants = _grants(template["Resources"]["ForwarderRole"])
    bucket = json.dumps({"Fn::GetAtt": ["LargeOrderBucket", "Arn"]})
    assert ("s3:GetObject", json.dumps({"Fn::Sub": "${LargeOrderBucket.Arn}/*"})) in grants
    assert ("s3:ListBucket", bucket) in grants


def test_replay_of_a_pointer_record_with_an_odd_extended_payload_size_reports_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`"²".isdigit()` is True but int("²") raises: one odd record must not crash the whole replay."""
    pointer = Pointer("bucket", "orders/1/v/abc.json").body()

    def record(size: str, order_id: str = "1") -> dict[str, Any]:
        attributes = {Attr.ORDER_ID: order_id, Attr.UPDATED_AT: "2026-01-02T03:04:05Z", SIZE_ATTRIBUTE: size}
        return {"body": pointer, "messageAttributes": {k: {"stringValue": v} for k, v in attributes.items()}}

    odd, odd_id, fine = tmp_path / "odd.json", tmp_path / "odd-id.json", tmp_path / "fine.json"
    odd.write_text(json.dumps({"Records": [record("²")]}))
    odd_id.write_text(json.dumps({"Records": [record("300000", order_id="²")]}))
    fine.write_text(json.dumps({"Records": [record("300000")]}))
    code = cli.main(["replay", "--dry-run", "--json", str(odd), str(odd_id), str(fine)])
    report = {Path(f["path"]).name: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert code == 1
    assert SIZE_ATTRIBUTE in report["odd.json"]["error"] and Attr.ORDER_ID in report["odd-id.json"]["error"]
    assert report["fine.json"]["ok"] and report["fine.json"]["orders"] == [1]


class HangingServer:
    """A TCP server that accepts connections and never answers: S3 stalled mid-request."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._open.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for conn in self._open:
            conn.close()


def poll_in_thread(poll: Callable[[], Any], budget: float) -> tuple[threading.Thread, float]:
    """Runs `poll` (an event source's `poll_once`) in a thread of its own and waits for it at most
    `budget` seconds: (the thread, the seconds waited). A stalled invocation cannot hang the test."""
    thread = threading.Thread(target=poll, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=budget)
    return thread, time.monotonic() - started


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
            attributes = order_attributes(SYSTEM, OrderRef(order_id, "2026-01-02T03:04:05Z"), "run-attack", None)
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


def test_a_large_export_entry_that_is_not_an_order_is_parked_once_not_lost(make_stack: MakeStack) -> None:
    """An entry over 1 MiB with an `updated_at` that is not an instant: parking it inline fails
    (SQS's limit), yet its one sighting was spent, so it never reached the DLQ the runbook points at."""
    stack = make_stack(orders=0)
    sandbox = stack.sandbox
    (entry,) = seed_large_orders(1, start_id=7001)
    entry["updated_at"] = "last Tuesday"
    sandbox.add_orders([entry])
    assert stack.poll()["invalid"] == 1
    assert stack.poll()["invalid"] == 1  # counted on every poll (the alarm), parked once

    (parked,) = stack.dlq_messages()
    attributes = parked["MessageAttributes"]
    assert attributes[Attr.ORDER_ID]["StringValue"] == "7001"
    assert "not an instant" in attributes[Attr.FAILURE_REASON]["StringValue"]
    pointer = Pointer.parse(parked["Body"])
    assert pointer is not None and pointer.bucket == stack.bucket
    stored = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=pointer.key)["Body"].read())
    assert stored["id"] == 7001 and stored["updated_at"] == "last Tuesday"


def test_a_redriven_refused_large_order_whose_object_expired_is_uploaded_again_by_the_next_poll(
    make_stack: MakeStack,
) -> None:
    """A refusal is parked as a new DLQ message (14 days from then), and each redrive-and-refuse
    starts that over, so a pointer can outlive the object's 30 days. The README promises that a
    missing object's order is uploaded again by the next poll, but the ledger still remembered the
    refusal: no poll claimed that version again, and the redrive's "try again" was lost."""
    stack = make_stack(orders=0, large=1)
    sandbox, receiver = stack.sandbox, stack.receiver
    (order_id,) = sandbox.pending(SYSTEM)
    receiver.reject_ids = {order_id}
    stack.poll()
    source = stack.event_source()
    source.drain(max_seconds=30)
    assert len(stack.dlq_messages()) == 1  # refused, parked as a pointer; the ledger remembers it

    (key,) = stack.large_objects()
    stack.s3.delete_object(Bucket=stack.bucket, Key=key)  # expired by the lifecycle rule
    receiver.reject_ids.clear()  # the ERP is fixed, and the operator redrives
    redrive(Target(queue_url=stack.queue_url, dlq_url=stack.dlq_url), "batch", expected=1)
    source.poll_once()  # the object is missing: the record fails (LargeOrderMissing)

    again = stack.poll()
    assert (again["enqueued"], again["large"]) == (1, 1), again
    source.drain(max_seconds=30)
    assert sandbox.exported(SYSTEM) == {order_id} == receiver.delivered_ids()


def test_an_unreadable_pointer_whose_order_id_attribute_is_not_ascii_digits_fails_alone(make_stack: MakeStack) -> None:
    """The order id of a pointer whose object is missing comes from its attributes; `"²".isdigit()`
    is True but int("²") raises, which crashed the invocation and returned the whole batch."""
    stack = make_stack(orders=10)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = sandbox.pending(SYSTEM)[0]
    send_order(stack, sandbox.order(good))
    attributes = order_attributes(SYSTEM, OrderRef(1, "2026-01-02T03:04:05Z"), "run-attack", None)
    attributes[Attr.ORDER_ID]["StringValue"] = "²"
    pointer = Pointer(stack.bucket, "orders/2/gone.json").body()
    send_message(stack, stack.queue_url, pointer, attributes)

    source = stack.event_source()
    assert source.poll_once() == 2
    assert source.stats.crashes == 0 and source.stats.failures == 1
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)


def test_redrive_lists_a_parked_entry_whose_order_id_is_not_ascii_digits(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The poller parks an export entry with the id it had, e.g. Traede's `"id": "²"` (not an
    integer, so not an order); `redrive` read it with isdigit() and crashed on int("²")."""
    stack = make_stack(orders=0)
    entry = {"id": "²", "updated_at": "2026-01-02T03:04:05Z"}
    attributes = {
        Attr.ORDER_ID: {"DataType": "String", "StringValue": "²"},
        Attr.FAILURE_REASON: {"DataType": "String", "StringValue": "body has no integer 'id'"},
    }
    send_message(stack, stack.dlq_url, json.dumps(entry), attributes)
    capsys.readouterr()
    code = cli.main(["redrive", "--dlq-url", stack.dlq_url, "--dry-run", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert code == 0 and [m["order_id"] for m in listed["messages"]] == [None]


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


def stack_ledger(stack: LocalStack) -> list[LedgerEntry]:
    return list(ExportLedger.on_dynamodb(stack.dynamodb, stack.table, SYSTEM).entries())


def test_replay_without_the_bucket_does_not_send_an_order_over_the_threshold_inline(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay's docstring says an order over the threshold fails without the bucket; up to 1 MiB
    it went inline, past the 256 KiB that keeps a forwarder batch within Lambda's 6 MB payload."""
    stack = make_stack(orders=10)
    (large,) = seed_large_orders(1, start_id=9001, size=400 * 1024)
    small = stack.sandbox.order(stack.sandbox.pending(SYSTEM)[0])
    (tmp_path / "large.json").write_text(json.dumps(large))
    (tmp_path / "small.json").write_text(json.dumps(small))
    capsys.readouterr()
    code = cli.main(
        ["replay", "--queue-url", stack.queue_url, "--system-id", SYSTEM, "--json", str(tmp_path)]  # no --bucket
    )
    report = {Path(f["path"]).name: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert code == 1 and report["small.json"]["ok"]
    assert "--bucket" in report["large.json"]["failed"]["9001"]
    queued = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [json.loads(m["Body"])["id"] for m in queued["Messages"]] == [small["id"]]
