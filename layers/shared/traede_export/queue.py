"""Writes messages to SQS in batches of 10 and retries the entries SQS reports as failed."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.models import MAX_SEND_BATCH, chunk

MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class OutboundMessage:
    entry_id: str  # unique within one send call; also how the caller matches results
    body: str
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # entry id -> reason


class QueueWriter:
    def __init__(self, sqs: Any, queue_url: str, attempts: int = 3, pause: float = 0.2) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._attempts = attempts
        self._pause = pause

    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        report = SendReport()
        for batch in chunk(messages, MAX_SEND_BATCH):
            self._send_batch(batch, report)
        return report

    def _send_batch(self, batch: list[OutboundMessage], report: SendReport) -> None:
        pending = {}
        for m in batch:
            if len(m.body.encode("utf-8")) > MAX_MESSAGE_BYTES:
                report.failed[m.entry_id] = "body larger than the SQS limit of 1 MiB"
            else:
                pending[m.entry_id] = m
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
