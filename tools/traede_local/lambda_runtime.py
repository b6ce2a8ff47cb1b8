"""Runs the real handlers in-process the way Lambda does: cold start, context, SQS polling."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from traede_export.models import MAX_SEND_BATCH
from traede_local.template import FunctionSpec

_ENV_LOCK = threading.Lock()
_saved: dict[str, str | None] = {}
_active = 0


@contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a cold start or an invocation.

    Overlapping invocations (two containers of one function) share the patch: the old values
    come back when the last of them ends, so neither waits for the other.
    """
    global _active
    with _ENV_LOCK:
        for k in values:
            _saved.setdefault(k, os.environ.get(k))
        os.environ.update(values)
        _active += 1
    try:
        yield
    finally:
        with _ENV_LOCK:
            _active -= 1
            if _active == 0:
                for k, v in _saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
                _saved.clear()


class LambdaContext:
    """The attributes Powertools reads from Lambda's context object."""

    def __init__(self, function_name: str, timeout: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """One function as deployed: its code directory, handler and environment."""

    spec: FunctionSpec
    overrides: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # seconds; the template's unless overridden
    module: ModuleType | None = None
    init_seconds: float = 0.0

    @property
    def environment(self) -> dict[str, str]:
        return {
            **self.spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.logical_id,
            **self.overrides,
        }

    def cold_start(self) -> ModuleType:
        """Import the handler module afresh, as a new container would."""
        path = self.spec.code_dir / (self.spec.module.replace(".", "/") + ".py")
        name = f"lambda_{self.spec.logical_id}_{uuid.uuid4().hex[:8]}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        started = time.perf_counter()
        with patched_env(self.environment):
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        self.init_seconds = time.perf_counter() - started
        self.module = module
        return module

    @property
    def budget(self) -> float:
        """Seconds an invocation may run: the template's Timeout unless overridden."""
        return self.timeout or self.spec.timeout

    def invoke(self, event: dict[str, Any]) -> Any:
        """Call the handler; concurrent calls really overlap, as in two Lambda containers."""
        module = self.module or self.cold_start()
        context = LambdaContext(self.spec.logical_id, self.budget)
        with patched_env(self.environment):
            return getattr(module, self.spec.function)(event, context)


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Shape ReceiveMessage results as the event Lambda's SQS integration delivers."""
    records = []
    for m in messages:
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": a.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a["DataType"],
                    }
                    for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


@dataclass
class DrainStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    crashes: int = 0
    timeouts: int = 0


class Invokable(Protocol):
    """What an event source calls: a function, or a wrapper that records what passes through it."""

    @property
    def budget(self) -> float: ...

    def invoke(self, event: dict[str, Any]) -> Any: ...


class SqsEventSource:
    """Lambda's SQS event source mapping, in miniature.

    Receives batches, invokes the function, deletes what succeeded and leaves the
    batch item failures to reappear after the visibility timeout. SQS itself (moto)
    moves a message to the DLQ after maxReceiveCount receives.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        function: Invokable,
        batch_size: int = MAX_SEND_BATCH,
        visibility_timeout: int = 1,
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._function = function
        self._batch_size = batch_size
        self._visibility = visibility_timeout
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.stats = DrainStats()

    def poll_once(self, wait: int = 0) -> int:
        """One receive and one invocation; returns the number of records handled."""
        answer = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            VisibilityTimeout=self._visibility,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.stats.invocations += 1
        self.stats.records += len(messages)
        started = time.monotonic()
        try:
            response = self._function.invoke(sqs_event(messages, self._arn))
        except Exception:  # a crashed invocation returns the whole batch, as in Lambda
            self.stats.crashes += 1
            self.stats.failures += len(messages)
            return len(messages)
        if time.monotonic() - started > self._function.budget:
            # Lambda would have stopped the function: its response never reaches SQS.
            self.stats.timeouts += 1
            self.stats.failures += len(messages)
            return len(messages)
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        self.stats.failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def in_queue(self) -> int:
        return queue_depth(self._sqs, self.queue_url)

    def drain(self, max_seconds: float = 120.0, progress: Callable[[int], None] | None = None) -> DrainStats:
        """Invoke until the queue is empty, waiting out visibility timeouts for redeliveries.

        `progress` is called with the number of records handled so far.
        """
        stop = time.monotonic() + max_seconds
        while time.monotonic() < stop:
            if self.poll_once():
                if progress is not None:
                    progress(self.stats.records)
                continue
            if self.in_queue() == 0:
                break
            time.sleep(0.2)
        return self.stats


def queue_depth(sqs: Any, url: str) -> int:
    """Messages visible plus in flight."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
