"""Writes messages to SQS in batches and retries the entries SQS reports as failed.

A batch holds at most 10 entries and at most 1 MiB in total: SQS limits the sum of one
SendMessageBatch, not only each message, and refuses the whole call beyond it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.models import MAX_SEND_BATCH
from traede_export.redact import mask

MAX_MESSAGE_BYTES = 1024 * 1024  # one message, body and attributes
MAX_BATCH_BYTES = 1024 * 1024  # the sum of one SendMessageBatch


@dataclass(frozen=True)
class OutboundMessage:
    entry_id: str  # unique within one send call; also how the caller matches results
    body: str
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes as SQS counts them: the body plus each attribute's name, type and value."""
        return len(self.body.encode("utf-8")) + sum(
            len(name.encode("utf-8"))
            + len(a["DataType"].encode("utf-8"))
            + len(a.get("StringValue", "").encode("utf-8"))
            for name, a in self.attributes.items()
        )


def _masked(message: OutboundMessage) -> OutboundMessage:
    """Attributes (a parked order's failure_reason) masked; the body is Traede's order, sent untouched."""
    attributes = {
        n: {**a, "StringValue": mask(a["StringValue"])} if "StringValue" in a else a
        for n, a in message.attributes.items()
    }
    return OutboundMessage(message.entry_id, message.body, attributes)


def sqs_batches(messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
    """Split, in order, into batches within SQS's count and total-size limits."""
    batches: list[list[OutboundMessage]] = []
    current: list[OutboundMessage] = []
    total = 0
    for m in messages:
        if current and (len(current) == MAX_SEND_BATCH or total + m.size > MAX_BATCH_BYTES):
            batches.append(current)
            current, total = [], 0
        current.append(m)
        total += m.size
    if current:
        batches.append(current)
    return batches


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # entry id -> reason


class SendsMessageBatches(Protocol):
    """The one SQS call the writer makes: boto3's SQS client, or an in-memory fake in unit tests."""

    def send_message_batch(self, *, QueueUrl: str, Entries: Sequence[Any]) -> Any: ...


class QueueWriter:
    def __init__(self, sqs: SendsMessageBatches, queue_url: str, attempts: int = 3, pause: float = 0.2) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._attempts = attempts
        self._pause = pause

    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        report = SendReport()
        fitting = []
        for m in map(_masked, messages):
            if m.size > MAX_MESSAGE_BYTES:
                report.failed[m.entry_id] = f"message of {m.size} bytes is larger than the SQS limit of 1 MiB"
            else:
                fitting.append(m)
        for batch in sqs_batches(fitting):
            self._send_batch(batch, report)
        return report

    def _send_batch(self, batch: list[OutboundMessage], report: SendReport) -> None:
        pending = {m.entry_id: m for m in batch}
        for attempt in range(self._attempts):
            if not pending:
                return
            if attempt:
                time.sleep(self._pause * attempt)
            entries = [
                {"Id": m.entry_id, "MessageBody": m.body, "MessageAttributes": m.attributes} for m in pending.values()
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                reason = f"SendMessageBatch failed: {exc}"
                for entry_id in pending:
                    report.failed[entry_id] = reason
                continue
            for ok in answer.get("Successful", []):
                report.sent.append(ok["Id"])
                pending.pop(ok["Id"], None)
                report.failed.pop(ok["Id"], None)
            for bad in answer.get("Failed", []):
                report.failed[bad["Id"]] = f"{bad.get('Code')}: {bad.get('Message', '')}"
                if bad.get("SenderFault"):
                    pending.pop(bad["Id"], None)  # our fault: retrying the same entry cannot help
        for entry_id in pending:
            report.failed.setdefault(entry_id, "not accepted after retries")
