"""The poller's sends to the order queue."""

from __future__ import annotations

from typing import Any

from helpers.stack import SYSTEM, eligible, export_options, ledger_of, traede_client
from traede_export.claim_check import ClaimCheck
from traede_export.poll import Poller
from traede_export.queue import QueueWriter
from traede_local.local_stack import LocalStack


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
        traede=traede_client(stack),
        ledger=ledger_of(stack),
        queue=QueueWriter(sqs, stack.queue_url),
        dlq=QueueWriter(stack.sqs, stack.dlq_url),
        claims=ClaimCheck(stack.s3, stack.bucket),
        system_id=SYSTEM,
        options=export_options(stack),
        lease_seconds=60,
    )
    result = poller.run("run-1")
    assert result.enqueued == len(eligible(stack)) and result.failed == 0
    assert sqs.ids and all(ids == [str(i) for i in range(len(ids))] for ids in sqs.ids)
