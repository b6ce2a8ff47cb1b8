"""What the operator commands do, apart from argument parsing and printing (see `cli.py`).

Everything here talks to AWS through boto3, so it works the same against a deployed stack and
against a local endpoint (boto3 honours `AWS_ENDPOINT_URL`, e.g. the moto server of the tests).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from traede_export.claim_check import is_pointer
from traede_export.errors import InvalidOrder
from traede_export.ledger import ExportLedger
from traede_export.models import MAX_SEND_BATCH, Attr, OrderRef, chunk, version_of, whole_number
from traede_export.queue import OutboundMessage, QueueWriter

Progress = Callable[..., Any]

# Stack outputs (template.yaml) -> Target fields.
STACK_OUTPUTS = {
    "QueueUrl": "queue_url",
    "DeadLetterQueueUrl": "dlq_url",
    "LedgerTableName": "table",
    "PollerFunctionName": "function",
    "LargeOrderBucketName": "bucket",
}
NEEDED_AS = {  # how the operator supplies each field
    "queue_url": "--queue-url (or --stack)",
    "dlq_url": "--dlq-url (or --stack)",
    "table": "--table (or --stack)",
    "function": "--function (or --stack)",
    "bucket": "--bucket (or --stack)",
    "system_id": "--system-id or TRAEDE_SYSTEM_ID (or --stack)",
}


class OpsError(RuntimeError):
    """A failure to report to the operator in one sentence (exit code 1)."""


def client(service: str, region: str | None = None, **config: Any) -> Any:
    """A boto3 client; AWS_ENDPOINT_URL (set by --endpoint-url) points it at a local endpoint."""
    make: Any = boto3.client  # typed per service literal; `service` is a plain str here
    return make(service, region_name=region, config=Config(**config) if config else None)


def local_endpoint() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_SQS"))


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def loopback_queue(sqs: Any) -> bool:
    """This SQS client reaches an endpoint on this machine (moto, a local stack), not a deployed stack.

    The client's own endpoint, not the variables: boto3 ignores AWS_ENDPOINT_URL(_SQS) under
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS (or a profile's setting), and then talks to AWS."""
    try:
        host = urlsplit(sqs.meta.endpoint_url).hostname
    except ValueError:
        return False
    return host in LOOPBACK


# ------------------------------------------------------------------------------ target


@dataclass
class Target:
    """Where the commands act: from a stack's outputs, or from explicit options."""

    queue_url: str | None = None
    dlq_url: str | None = None
    table: str | None = None
    function: str | None = None
    bucket: str | None = None  # large orders (claim-check)
    system_id: str | None = None
    stack: str | None = None
    region: str | None = None

    def need(self, *names: str) -> None:
        missing = [NEEDED_AS[n] for n in names if not getattr(self, n)]
        if missing:
            raise OpsError("missing " + ", ".join(missing))

    def value(self, name: str) -> str:
        self.need(name)
        return str(getattr(self, name))


def resolve_target(
    stack: str | None,
    region: str | None = None,
    *,
    queue_url: str | None = None,
    dlq_url: str | None = None,
    table: str | None = None,
    function: str | None = None,
    bucket: str | None = None,
    system_id: str | None = None,
) -> Target:
    """Explicit values win; the rest come from the stack's outputs (and its SystemId parameter)."""
    target = Target(stack=stack, region=region)
    if stack:
        cfn = client("cloudformation", region)
        try:
            found = cfn.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
                where = region or cfn.meta.region_name
                raise OpsError(f"stack {stack!r} not found in {where}: {error.get('Message')}") from None
            raise
        if not found:
            raise OpsError(f"stack {stack!r} not found")
        description = found[0]
        for output in description.get("Outputs", []):
            name = STACK_OUTPUTS.get(output.get("OutputKey", ""))
            if name:
                setattr(target, name, output.get("OutputValue"))
        for parameter in description.get("Parameters", []):
            if parameter.get("ParameterKey") == "SystemId":
                target.system_id = parameter.get("ParameterValue")
    explicit = {"queue_url": queue_url, "dlq_url": dlq_url, "table": table, "function": function, "bucket": bucket}
    for name, value in explicit.items():
        if value:
            setattr(target, name, value)
    if system_id:
        target.system_id = system_id
    return target


# ------------------------------------------------------------------------------ queues


def queue_depths(sqs: Any, url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def peek_oldest_age(sqs: Any, url: str) -> float | None:
    """Age of the oldest message among one receive's worth, left visible (visibility 0).

    Approximate (only visible messages, at most 10), and each peek counts as a receive, which
    matters on a queue with a redrive policy: `auto` peeks only at local endpoints.
    """
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["SentTimestamp"]
    ).get("Messages", [])
    stamps = [int(m["Attributes"]["SentTimestamp"]) for m in messages if "SentTimestamp" in m.get("Attributes", {})]
    if not stamps:
        return None
    return max(0.0, round(time.time() - min(stamps) / 1000, 1))


def cloudwatch_oldest_age(cloudwatch: Any, url: str) -> float | None:
    """The latest ApproximateAgeOfOldestMessage datapoint of the last 15 minutes."""
    now = datetime.now(UTC)
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": url.rstrip("/").rsplit("/", 1)[-1]}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def oldest_age(sqs: Any, url: str, depth: int, source: str, region: str | None) -> tuple[float | None, str]:
    """(age in seconds or None, how it was found). `source`: auto, cloudwatch, peek or none."""
    if depth == 0:
        return 0.0, "empty"
    if source == "none":
        return None, "none"
    if source == "auto":
        source = "peek" if local_endpoint() else "cloudwatch"
    if source == "cloudwatch":
        try:
            age = cloudwatch_oldest_age(client("cloudwatch", region), url)
        except (ClientError, BotoCoreError):
            age = None
        return (age, "cloudwatch") if age is not None else (None, "cloudwatch (no datapoints)")
    return peek_oldest_age(sqs, url), "peek"


# ------------------------------------------------------------------------------ status


@dataclass
class StatusLimits:
    max_message_age: float = 1800.0  # seconds; the template's OldestMessageAgeThresholdSeconds default
    max_poll_age: float = 15.0  # minutes; PollerStaleAlarm fires after 3 x 5-minute intervals
    age_source: str = "auto"
    sample: int = 10  # order ids listed per ledger category


def status(target: Target, limits: StatusLimits) -> dict[str, Any]:
    target.need("queue_url", "dlq_url", "table", "system_id")
    sqs = client("sqs", target.region)
    queues: dict[str, Any] = {}
    for name, url in (("queue", target.value("queue_url")), ("dlq", target.value("dlq_url"))):
        depths = queue_depths(sqs, url)
        total = depths["visible"] + depths["in_flight"] + depths["delayed"]
        age, how = oldest_age(sqs, url, total, limits.age_source, target.region)
        queues[name] = {"url": url, **depths, "total": total, "oldest_age_seconds": age, "age_source": how}

    now = time.time()
    ledger = ExportLedger.on_dynamodb(
        client("dynamodb", target.region), target.value("table"), target.value("system_id")
    )
    in_flight: list[int] = []
    not_marked: list[int] = []
    orders = 0
    for entry in ledger.entries():
        orders += 1
        if entry.enqueued_version > entry.delivered_version and entry.lease_until > now:
            in_flight.append(entry.order_id)
        if entry.delivered_version > entry.marked_version:
            not_marked.append(entry.order_id)
    poll = ledger.last_poll()
    poll_age = round(now - int(poll["finished_at"]), 1) if poll and "finished_at" in poll else None

    problems = []
    dlq = queues["dlq"]
    if dlq["total"]:
        problems.append(f"{dlq['total']} message(s) on the dead-letter queue")
    age = queues["queue"]["oldest_age_seconds"]
    if age is not None and age > limits.max_message_age:
        problems.append(f"oldest queued message is {age:.0f}s old (limit {limits.max_message_age:.0f}s)")
    if poll_age is None:
        problems.append("no successful poll recorded")
    elif poll_age > limits.max_poll_age * 60:
        problems.append(f"no successful poll for {poll_age:.0f}s (limit {limits.max_poll_age:g} min)")
    if not_marked:
        problems.append(f"{len(not_marked)} order(s) delivered but not marked exported in Traede")
    return {
        "system_id": target.system_id,
        "queue": queues["queue"],
        "dlq": dlq,
        "ledger": {
            "table": target.table,
            "orders": orders,
            "in_flight": len(in_flight),
            "in_flight_sample": sorted(in_flight)[: limits.sample],
            "delivered_not_marked": len(not_marked),
            "delivered_not_marked_sample": sorted(not_marked)[: limits.sample],
        },
        "last_poll": {**(poll or {}), "age_seconds": poll_age} if poll else None,
        "healthy": not problems,
        "problems": problems,
        "verdict": "healthy" if not problems else "stuck: " + "; ".join(problems),
    }


# ------------------------------------------------------------------------------ redrive


@dataclass
class DeadLetter:
    message_id: str
    order_id: int | None
    attempts: int
    last_error: str | None
    sent_at: str | None
    large: bool = False  # the body is an S3 pointer (claim-check); a redrive moves the pointer as is
    version: str | None = None  # the order's version (its updated_at, as the ledger writes it), if readable
    reexport_since: str | None = None

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attrs = message.get("MessageAttributes", {})
    system = message.get("Attributes", {})

    def text(name: str) -> str | None:
        value = attrs.get(name, {}).get("StringValue")
        return str(value) if value else None

    order_id, updated_at = whole_number(text(Attr.ORDER_ID)), text(Attr.UPDATED_AT)
    if order_id is None or updated_at is None:
        try:
            ref = OrderRef.from_body(message.get("Body"))
            order_id, updated_at = ref.order_id if order_id is None else order_id, updated_at or ref.updated_at
        except InvalidOrder:
            pass
    try:
        version = version_of(updated_at) if updated_at else None
    except ValueError:
        version = None
    sent = system.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"],
        order_id=order_id,
        attempts=int(system.get("ApproximateReceiveCount", 0)),
        last_error=text(Attr.FAILURE_REASON),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat(timespec="seconds") if sent else None,
        large=is_pointer(message.get("Body")),
        version=version,
        reexport_since=text(Attr.REEXPORT_SINCE),
    )


def _receive(sqs: Any, url: str, visibility: int, wait_seconds: int = 1) -> list[dict[str, Any]]:
    """One receive, long-polling by default (1 s): unlike short polling it asks every SQS server."""
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=MAX_SEND_BATCH,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return list(answer.get("Messages", []))


PEEK_LIMIT = 10_000  # messages: a look at a queue stays a look, however deep the queue
# Seconds a looked-at message stays hidden: longer than a look at PEEK_LIMIT messages over a slow
# link, so none comes round again mid-look. All are made visible again at the end.
PEEK_VISIBILITY = 300


def peek_messages(sqs: Any, url: str, wait_seconds: int = 1) -> list[dict[str, Any]]:
    """Every message on a queue (up to `PEEK_LIMIT`), then made visible again: a look, not a take.

    Each look counts as a receive (towards a redrive policy's maxReceiveCount). `wait_seconds`
    long-polls, which asks every SQS server; 0 suits a local endpoint, which has one.
    """
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < PEEK_LIMIT:
        batch = _receive(sqs, url, visibility=PEEK_VISIBILITY, wait_seconds=wait_seconds)
        new = [m for m in batch if m["MessageId"] not in seen]
        # Only the newest receipt handle resets a message's visibility.
        seen.update((m["MessageId"], m) for m in batch)
        if not new:  # empty, or the look outlasted the visibility timeout and came round again
            break
    for messages in chunk(list(seen.values()), MAX_SEND_BATCH):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages)
            ],
        )
    return list(seen.values())


def dead_letters(sqs: Any, dlq_url: str, wait_seconds: int = 1) -> list[DeadLetter]:
    """Every message on the DLQ (up to `PEEK_LIMIT`), left in place, oldest first."""
    letters = [_dead_letter(m) for m in peek_messages(sqs, dlq_url, wait_seconds)]
    return sorted(letters, key=lambda d: (d.sent_at or "", d.message_id))


def receive_limit(sqs: Any, url: str) -> int | None:
    """The queue's redrive policy's maxReceiveCount: what a look at it (a receive) counts towards; None if none."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = attrs.get("RedrivePolicy")
    if not policy:
        return None
    try:
        return int(json.loads(policy)["maxReceiveCount"])
    except (ValueError, KeyError, TypeError):
        return 0  # a policy we cannot read still counts receives


@dataclass
class RedriveResult:
    method: str
    moved: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # message id -> reason
    task_handle: str | None = None
    task_status: str | None = None
    note: str | None = None


UNSUPPORTED_CODES = {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction"}


def task_unsupported(exc: ClientError) -> bool:
    """The endpoint does not implement StartMessageMoveTask (moto answers HTTP 500/501)."""
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return error.get("Code") in UNSUPPORTED_CODES or status in (404, 500, 501)


def redrive(
    target: Target,
    method: str,
    expected: int,
    progress: Progress | None = None,
    timeout: float = 900.0,
) -> RedriveResult:
    """Move the DLQ's messages to the order queue with the move task, or batch by batch."""
    sqs = client("sqs", target.region)
    queue_url, dlq_url = target.value("queue_url"), target.value("dlq_url")
    if method in ("auto", "task"):
        try:
            return _redrive_task(sqs, target, queue_url, dlq_url, progress, timeout)
        except ClientError as exc:
            if method == "task" or not task_unsupported(exc):
                raise
            error = exc.response.get("Error", {})
            note = f"StartMessageMoveTask unavailable ({error.get('Code')}); moved batch by batch"
        result = _redrive_batch(sqs, queue_url, dlq_url, expected, progress, timeout)
        result.note = note
        return result
    return _redrive_batch(sqs, queue_url, dlq_url, expected, progress, timeout)


def _redrive_task(
    sqs: Any, target: Target, queue_url: str, dlq_url: str, progress: Progress | None, timeout: float
) -> RedriveResult:
    once = client("sqs", target.region, retries={"total_max_attempts": 1})  # an unsupported call fails fast
    source = queue_arn(sqs, dlq_url)
    handle = once.start_message_move_task(SourceArn=source, DestinationArn=queue_arn(sqs, queue_url))["TaskHandle"]
    result = RedriveResult("task", task_handle=handle)
    stop = time.monotonic() + timeout
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        result.task_status = task.get("Status")
        if progress is not None:
            progress(result.moved)
        if result.task_status in ("COMPLETED", "CANCELLED", "FAILED"):
            if result.task_status != "COMPLETED":
                result.failed["task"] = f"{result.task_status}: {task.get('FailureReason', '')}".rstrip(": ")
            return result
        if time.monotonic() > stop:
            result.note = f"still {result.task_status} after {timeout:.0f}s; follow it with list-message-move-tasks"
            return result
        time.sleep(2)


def _outbound_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in attrs.items():
        kept = {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}
        out[name] = kept
    return out


def _redrive_batch(
    sqs: Any, queue_url: str, dlq_url: str, expected: int, progress: Progress | None, timeout: float
) -> RedriveResult:
    """Receive up to 10, send them to the queue, delete what was sent. At-least-once, never lost."""
    result = RedriveResult("batch")
    writer = QueueWriter(sqs, queue_url)
    stop = time.monotonic() + timeout
    cap = max(expected, 1) * 2 + 100  # new dead letters arriving meanwhile cannot keep us here forever
    handled = 0
    while handled < cap and time.monotonic() < stop:
        batch = _receive(sqs, dlq_url, visibility=120)
        if not batch:
            break
        handled += len(batch)
        # QueueWriter splits by bytes too: ten inline orders near the threshold pass SendMessageBatch's 1 MiB.
        report = writer.send(
            [
                OutboundMessage(str(i), m["Body"], _outbound_attributes(m.get("MessageAttributes", {})))
                for i, m in enumerate(batch)
            ]
        )
        for entry_id, reason in report.failed.items():
            result.failed[batch[int(entry_id)]["MessageId"]] = reason
        sent = [batch[int(entry_id)] for entry_id in report.sent]
        if sent:
            deleted = sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)],
            )
            for bad in deleted.get("Failed", []):
                # Sent but still on the DLQ: a later redrive sends it again; the ledger dedupes.
                result.failed[sent[int(bad["Id"])]["MessageId"]] = f"sent, not deleted: {bad.get('Code')}"
            result.moved += len(deleted.get("Successful", []))
        if progress is not None:
            progress(result.moved)
    return result


# ------------------------------------------------------------------------------ re-export


def invoke_poller(target: Target, since: str, throttle_wait: float = 300.0) -> dict[str, Any]:
    """Invoke the poller synchronously with a re-export event; its return value is the counts.

    No SDK retries (a timed-out invoke must not start a second poll); a throttle (the scheduled
    run holds the single reserved slot) is retried until `throttle_wait` seconds have passed.
    """
    function = target.value("function")
    lam = client("lambda", target.region, read_timeout=330, connect_timeout=10, retries={"total_max_attempts": 1})
    payload = json.dumps({"not_exported_since": since}).encode()
    stop = time.monotonic() + throttle_wait
    while True:
        try:
            answer = lam.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=payload)
            break
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TooManyRequestsException" or time.monotonic() > stop:
                raise
            time.sleep(10)
    raw = answer["Payload"].read()
    try:
        result = json.loads(raw or b"null")
    except ValueError:
        result = {"raw": raw.decode("utf-8", "replace")}
    if answer.get("FunctionError"):
        detail = result if isinstance(result, dict) else {}
        raise OpsError(
            f"the poller failed ({answer['FunctionError']}): "
            f"{detail.get('errorType', '')}: {detail.get('errorMessage', raw.decode('utf-8', 'replace'))}"
        )
    if not isinstance(result, dict):
        raise OpsError(f"the poller returned {result!r}, not its counts")
    return result
