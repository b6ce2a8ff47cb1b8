"""Large orders through the S3 claim-check, end to end: real handlers, moto (SQS, S3), DynamoDB Local."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from traede_export import wiring
from traede_export.claim_check import SIZE_ATTRIBUTE, Pointer
from traede_local.export_query import strip_to_includes
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack
from traede_local.seed import seed_large_orders
from traede_ops import cli

SYSTEM = "local-erp"
MIB = 1024 * 1024
LAMBDA_PAYLOAD_LIMIT = 6_000_000  # 6 MB, the smaller reading of Lambda's invocation payload limit


def message_size(body: str, attributes: dict[str, Any]) -> int:
    """Bytes as SQS counts them: body plus each attribute's name, type and value."""
    return len(body.encode()) + sum(
        len(name.encode()) + len(a["DataType"].encode()) + len(str(a.get("StringValue", "")).encode())
        for name, a in attributes.items()
    )


@dataclass
class Recorder:
    """The forwarder, invoked through Lambda's SQS event source, with each event's size recorded."""

    function: LocalFunction
    event_bytes: list[int] = field(default_factory=list)
    message_bytes: list[int] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    @property
    def budget(self) -> float:
        return self.function.budget

    def invoke(self, event: dict[str, Any]) -> Any:
        self.event_bytes.append(len(json.dumps(event).encode()))
        for r in event["Records"]:
            attrs = {
                n: {"DataType": a["dataType"], "StringValue": a["stringValue"]}
                for n, a in r["messageAttributes"].items()
            }
            self.message_bytes.append(message_size(r["body"], attrs))
        response = self.function.invoke(event)
        self.responses.append(response)
        return response


@pytest.fixture
def sent_batches() -> Any:
    """The size of every SendMessageBatch the functions make (SQS refuses one over 1 MiB in total)."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(sum(message_size(e["MessageBody"], e.get("MessageAttributes", {})) for e in params["Entries"]))

    events = wiring._aws_session().events
    events.register("provide-client-params.sqs.SendMessageBatch", record)
    yield sizes
    events.unregister("provide-client-params.sqs.SendMessageBatch", record)


def traedes_json(stack: LocalStack, order_id: int) -> bytes:
    """The order as Traede's export serves it (with the stack's includes), as the poller forwards it."""
    assert stack.sandbox is not None
    includes = set(stack.poller.environment["EXPORT_INCLUDES"].split(","))
    return json.dumps(strip_to_includes(stack.sandbox.order(order_id), includes)).encode()


def test_a_poll_with_12_large_and_30_small_orders_delivers_each_once_byte_identical(
    make_stack: Any, sent_batches: list[int], tmp_path: Path
) -> None:
    # 38 seeded orders hold 4 drafts and 4 closed ones (not exported): 30 small, plus 12 large.
    stack: LocalStack = make_stack(orders=38, large=12, store_dir=tmp_path / "received")
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    pending = set(sandbox.pending(SYSTEM))
    large_ids = {i for i in pending if len(traedes_json(stack, i)) > MIB}
    assert len(pending) == 42 and len(large_ids) == 12
    sizes = [len(traedes_json(stack, i)) for i in large_ids]
    assert all(1.4 * MIB < s < 1.6 * MIB for s in sizes), sizes

    started = time.monotonic()
    poll = stack.poll()
    poll_seconds = time.monotonic() - started
    assert (poll["fetched"], poll["enqueued"], poll["large"], poll["failed"]) == (42, 42, 12, 0)

    forwarder = Recorder(stack.forwarder)
    started = time.monotonic()
    stats = stack.event_source(forwarder).drain(max_seconds=120)
    drain_seconds = time.monotonic() - started

    # Exactly once, each marked, under the key its version always has, and byte-identical.
    assert receiver.delivered_ids() == pending == sandbox.exported(SYSTEM)
    assert receiver.duplicates() == 0 and stats.failures == 0
    for order_id in pending:
        assert (tmp_path / "received" / f"{order_id}.json").read_bytes() == traedes_json(stack, order_id)
        (key,) = receiver.keys_by_order()[order_id]
        assert key.startswith(f"traede:{SYSTEM}:{order_id}:")

    # Within every limit: each message and each batch under 1 MiB, each Lambda event under 6 MB.
    assert sent_batches and max(sent_batches) <= MIB
    assert max(forwarder.message_bytes) <= 256 * 1024 + 2048
    assert max(forwarder.event_bytes) < LAMBDA_PAYLOAD_LIMIT
    assert stack.queue_depth(stack.queue_url) == 0 and stack.dlq_messages() == []

    # The design leaves the objects to the lifecycle rule (a redriven copy must still find its object):
    # one per large order, under its id and version, holding exactly what was delivered.
    keys = stack.large_objects()
    assert sorted(int(k.split("/")[1]) for k in keys) == sorted(large_ids)
    for key in keys:
        stored = stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        assert stored == traedes_json(stack, int(key.split("/")[1]))
    rules = stack.s3.get_bucket_lifecycle_configuration(Bucket=stack.bucket)["Rules"]
    assert [r["Expiration"]["Days"] for r in rules] == [30]

    print(  # the figures for the record (pytest -s)
        f"\nlarge orders {min(sizes)}-{max(sizes)} bytes; poll {poll_seconds:.2f}s, drain {drain_seconds:.2f}s "
        f"in {stats.invocations} invocations; largest SQS message {max(forwarder.message_bytes)} bytes, "
        f"largest SendMessageBatch {max(sent_batches)} bytes over {len(sent_batches)} batches, "
        f"largest Lambda event {max(forwarder.event_bytes)} bytes"
    )


def test_orders_at_the_threshold_keep_every_batch_and_event_within_its_limit(
    make_stack: Any, sent_batches: list[int]
) -> None:
    """The worst case for the limits: ten orders just under 256 KiB travel inline, two just over by S3."""
    stack: LocalStack = make_stack(orders=0)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    sandbox.add_orders(seed_large_orders(10, start_id=5001, size=255 * 1024))
    sandbox.add_orders(seed_large_orders(2, start_id=6001, size=257 * 1024))
    poll = stack.poll()
    assert (poll["enqueued"], poll["large"], poll["failed"]) == (12, 2, 0)

    forwarder = Recorder(stack.forwarder)
    stats = stack.event_source(forwarder).drain(max_seconds=60)
    assert stats.failures == 0 and receiver.duplicates() == 0
    assert receiver.delivered_ids() == sandbox.exported(SYSTEM) == {*range(5001, 5011), 6001, 6002}
    assert max(sent_batches) <= MIB < sum(sent_batches)  # split by bytes, not only by count
    assert max(forwarder.message_bytes) <= 256 * 1024 + 2048
    assert max(forwarder.event_bytes) < LAMBDA_PAYLOAD_LIMIT
    print(
        f"\nat the threshold: {len(sent_batches)} SendMessageBatch calls, largest {max(sent_batches)} bytes; "
        f"largest message {max(forwarder.message_bytes)} bytes; largest Lambda event {max(forwarder.event_bytes)} "
        f"bytes for {stats.records} records in {stats.invocations} invocations"
    )


def test_a_missing_object_fails_its_record_loudly_and_the_next_poll_brings_the_order_back(
    make_stack: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack: LocalStack = make_stack(orders=0, large=1)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    assert stack.poll()["large"] == 1
    (key,) = stack.large_objects()
    stack.s3.delete_object(Bucket=stack.bucket, Key=key)  # say, deleted by hand

    forwarder = Recorder(stack.forwarder)
    source = stack.event_source(forwarder)
    capsys.readouterr()
    assert source.poll_once() == 1
    emf = capsys.readouterr().out.replace(" ", "")  # Powertools prints the metrics as EMF
    (response,) = forwarder.responses
    assert len(response["batchItemFailures"]) == 1  # fails alone and comes back
    assert '"LargeOrderMissing":[1.0]' in emf
    assert any(f"{key} is missing" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    assert receiver.delivered_ids() == set() and sandbox.exported(SYSTEM) == set()

    # Not marked, so still pending in Traede; the lease was given back, so the next poll re-uploads it.
    again = stack.poll()
    assert (again["enqueued"], again["large"]) == (1, 1)
    assert stack.large_objects() == [key]  # content-addressed: the same object again
    source.drain(max_seconds=30)
    (order_id,) = sandbox.exported(SYSTEM)
    assert receiver.delivered_ids() == {order_id} and receiver.duplicates() == 0


def cli_json(capsys: pytest.CaptureFixture[str], stack: LocalStack, *argv: str) -> tuple[int, Any]:
    """`traede-export COMMAND --json` in-process, against the stack's resources."""
    place = ["--queue-url", stack.queue_url, "--dlq-url", stack.dlq_url, "--table", stack.table]
    place += ["--system-id", SYSTEM, "--bucket", stack.bucket, "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]]
    capsys.readouterr()
    code = cli.main([argv[0], *place, "--json", *argv[1:]])
    return code, json.loads(capsys.readouterr().out)


def test_operators_status_redrive_and_replay_keep_large_orders_as_pointers(
    make_stack: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stack: LocalStack = make_stack(orders=0, large=2)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    first, second = sorted(sandbox.pending(SYSTEM))
    receiver.reject_ids = {first, second}  # the ERP refuses both: parked in the DLQ
    stack.poll()
    stack.event_source().drain(max_seconds=30)
    parked = {int(m["MessageAttributes"]["order_id"]["StringValue"]): m for m in stack.dlq_messages()}
    assert set(parked) == {first, second}
    for m in parked.values():  # under 1 MiB: the pointer was parked, not the order
        assert Pointer.parse(m["Body"]) is not None and len(m["Body"]) < 1024
        assert m["MessageAttributes"][SIZE_ATTRIBUTE]["DataType"] == "Number"

    code, status = cli_json(capsys, stack, "status")
    assert code == 1 and status["dlq"]["total"] == 2  # stuck, and says so: pointers do not trip it up
    code, dry = cli_json(capsys, stack, "redrive", "--dry-run")
    assert code == 0 and {(d["order_id"], d["large"]) for d in dry["messages"]} == {(first, True), (second, True)}

    # Replay: a copied record keeps its pointer; a large order file is put in S3 and sent as one.
    record = parked[first]
    event = {
        "Records": [
            {
                "body": record["Body"],
                "messageAttributes": {
                    k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                    for k, v in record["MessageAttributes"].items()
                },
            }
        ]
    }
    (tmp_path / "pointer-event.json").write_text(json.dumps(event))
    (tmp_path / "large-order.json").write_text(json.dumps(sandbox.order(second)))
    receiver.reject_ids.clear()  # the cause is fixed
    code, replayed = cli_json(
        capsys, stack, "replay", str(tmp_path / "pointer-event.json"), str(tmp_path / "large-order.json")
    )
    assert code == 0 and replayed["orders_sent"] == 2, replayed
    queued = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    )["Messages"]
    assert len(queued) == 2 and all(Pointer.parse(m["Body"]) is not None for m in queued)
    assert all(SIZE_ATTRIBUTE in m["MessageAttributes"] for m in queued)

    code, moved = cli_json(capsys, stack, "redrive", "--method", "batch")
    assert code == 0 and moved["moved"] == 2
    stack.event_source().drain(max_seconds=30)
    assert sandbox.exported(SYSTEM) == {first, second} == receiver.delivered_ids()
    assert receiver.duplicates() == 0  # replayed and redriven copies of one version: delivered once
