"""Helpers for tests that drive the whole local stack (the real handlers on moto, DynamoDB Local
and the local HTTP servers)."""

from __future__ import annotations

import io
import json
import secrets
import threading
import time
import zipfile
from collections.abc import Callable
from typing import Any

import boto3

from traede_export.models import Attr
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
