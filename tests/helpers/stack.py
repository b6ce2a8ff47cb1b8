"""Helpers for tests that drive the whole local stack (the real handlers on moto, DynamoDB Local
and the local HTTP servers)."""

from __future__ import annotations

import io
import json
import secrets
import socket
import threading
import time
import zipfile
from collections.abc import Callable
from typing import Any

import boto3

from traede_export.claim_check import SIZE_ATTRIBUTE, Pointer, object_key
from traede_export.config import ExportOptions, HttpSettings
from traede_export.http import HeaderAuth, build_session
from traede_export.ledger import ExportLedger, LedgerEntry
from traede_export.models import Attr, OrderRef, idempotency_key, order_attributes
from traede_export.traede import TraedeClient
from traede_local.local_stack import LocalStack

SYSTEM = "local-erp"  # the local stack's system id


def eligible(stack: LocalStack) -> list[int]:
    """The orders Traede (the sandbox) lists as pending for the stack's system."""
    assert stack.sandbox is not None
    return stack.sandbox.pending(SYSTEM)


def send_order(stack: LocalStack, order: dict[str, Any], reexport_since: str | None = None) -> None:
    """A replayed or redriven copy: the body, plus a re-export instant if it is one."""
    attributes: dict[str, Any] = {}
    if reexport_since:
        attributes[Attr.REEXPORT_SINCE] = {"DataType": "String", "StringValue": reexport_since}
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(order), MessageAttributes=attributes)


def emitted_metrics(text: str) -> dict[str, float]:
    """Sum of every EMF metric the handlers printed (Powertools writes one JSON object per flush)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                name = metric["Name"]
                value = blob[name]
                totals[name] = totals.get(name, 0.0) + (sum(value) if isinstance(value, list) else value)
    return totals


def dlq_reasons(stack: LocalStack) -> dict[str, str]:
    """order id (or body) -> failure_reason of each parked message."""
    reasons = {}
    for m in stack.dlq_messages():
        attrs = m.get("MessageAttributes", {})
        key = attrs.get(Attr.ORDER_ID, {}).get("StringValue") or m["Body"][:40]
        reasons[key] = attrs.get(Attr.FAILURE_REASON, {}).get("StringValue", "")
    return reasons


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def in_background(work: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=work)
    thread.start()
    return thread


def as_cloudformation_stack(stack: LocalStack) -> str:
    """Register the local stack in moto as `sam deploy` leaves it, so `--stack NAME` finds it: a
    CloudFormation stack with the template's outputs and SystemId, and the poller as a Lambda
    function with the environment the template gives it (what `pending` reads). Returns the name."""
    name = f"traede-export-{secrets.token_hex(3)}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    role = boto3.client("iam").create_role(RoleName=f"{name}-poller", AssumeRolePolicyDocument=json.dumps(trust))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return None\n")
    function = f"{name}-poller"
    boto3.client("lambda").create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": dict(stack.poller.spec.environment)},
    )
    outputs = {
        "QueueUrl": stack.queue_url,
        "DeadLetterQueueUrl": stack.dlq_url,
        "LedgerTableName": stack.table,
        "PollerFunctionName": function,
        "LargeOrderBucketName": stack.bucket,
    }
    template = {
        "Parameters": {"SystemId": {"Type": "String"}},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "SystemId", "ParameterValue": stack.options.system_id}],
    )
    return name


def ledger_of(stack: LocalStack) -> ExportLedger:
    return ExportLedger.on_dynamodb(stack.dynamodb, stack.table, SYSTEM)


def put_raw(stack: LocalStack, order_id: int, **fields: dict[str, str]) -> None:
    """An item as another release (or a crashed container) left it."""
    item = {"pk": {"S": f"order#{SYSTEM}#{order_id}"}, **fields}
    stack.dynamodb.put_item(TableName=stack.table, Item=item)


def traede_client(stack: LocalStack) -> TraedeClient:
    assert stack.sandbox is not None
    creds = stack.credentials["traede"]
    session = build_session()
    headers = {"Authorization": f"Bearer {creds['access_token']}", "X-Traede-App-Key": creds["app_key"]}
    session.auth = HeaderAuth(lambda: headers)
    return TraedeClient(session, stack.sandbox.url, SYSTEM, timeout=HttpSettings().timeout)


def export_options(stack: LocalStack) -> ExportOptions:
    return ExportOptions()


def send_message(stack: LocalStack, url: str, body: str, attributes: dict[str, Any]) -> None:
    stack.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)


def put_pointer(stack: LocalStack, order_id: int, updated_at: str, data: bytes) -> str:
    """A pointer message to an object holding `data`, with the attributes the poller gives one."""
    ref = OrderRef(order_id, updated_at)
    key = object_key(order_id, ref.version, data)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data, ContentType="application/json")
    attributes = order_attributes(SYSTEM, ref, "run-1", None)
    attributes[SIZE_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(len(data))}
    send_message(stack, stack.queue_url, Pointer(stack.bucket, key).body(), attributes)
    return key


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


def stack_ledger(stack: LocalStack) -> list[LedgerEntry]:
    """Every entry of the stack's ledger."""
    return list(ExportLedger.on_dynamodb(stack.dynamodb, stack.table, SYSTEM).entries())
