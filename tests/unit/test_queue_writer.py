"""QueueWriter against an in-memory SQS: what it retries, what it gives up on, how it batches by size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from traede_export.queue import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, OutboundMessage, QueueWriter, sqs_batches

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
Answer = Callable[[list[str]], dict[str, Any]]  # the ids of one call's entries -> SendMessageBatch's answer


def accept(ids: list[str]) -> dict[str, Any]:
    return {"Successful": [{"Id": i} for i in ids], "Failed": []}


def refuse(*refused: str, sender_fault: bool = False) -> Answer:
    def answer(ids: list[str]) -> dict[str, Any]:
        fault = {"Code": "InternalError", "Message": "try again", "SenderFault": sender_fault}
        return {
            "Successful": [{"Id": i} for i in ids if i not in refused],
            "Failed": [{"Id": i, **fault} for i in ids if i in refused],
        }

    return answer


def throttled(ids: list[str]) -> dict[str, Any]:
    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendMessageBatch")


class FakeSqs:
    """Answers each SendMessageBatch with the next scripted answer; the last one repeats."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: Sequence[Any]) -> Any:
        assert QueueUrl == QUEUE
        ids = [e["Id"] for e in Entries]
        self.calls.append(ids)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return answer(ids)


def messages(count: int, body: str = "{}") -> list[OutboundMessage]:
    return [OutboundMessage(str(i), body) for i in range(count)]


def writer(sqs: FakeSqs) -> QueueWriter:
    return QueueWriter(sqs, QUEUE, attempts=3, pause=0)


def test_only_the_failed_entries_are_retried() -> None:
    sqs = FakeSqs(refuse("1"), accept)
    report = writer(sqs).send(messages(3))
    assert sqs.calls == [["0", "1", "2"], ["1"]]
    assert sorted(report.sent) == ["0", "1", "2"] and report.failed == {}


def test_an_entry_still_failing_after_every_attempt_is_reported_with_the_reason() -> None:
    sqs = FakeSqs(refuse("1"))
    report = writer(sqs).send(messages(2))
    assert sqs.calls == [["0", "1"], ["1"], ["1"]]  # three attempts, no more
    assert report.sent == ["0"] and report.failed == {"1": "InternalError: try again"}


def test_a_sender_fault_is_not_retried() -> None:
    sqs = FakeSqs(refuse("0", sender_fault=True), accept)
    report = writer(sqs).send(messages(2))
    assert sqs.calls == [["0", "1"]]  # the same entry would fail the same way
    assert report.sent == ["1"] and report.failed == {"0": "InternalError: try again"}


def test_a_failed_call_is_retried_and_a_later_success_clears_the_failure() -> None:
    sqs = FakeSqs(throttled, accept)
    report = writer(sqs).send(messages(2))
    assert sqs.calls == [["0", "1"], ["0", "1"]]
    assert sorted(report.sent) == ["0", "1"] and report.failed == {}


def test_a_call_failing_every_time_fails_every_entry_with_the_reason() -> None:
    sqs = FakeSqs(throttled)
    report = writer(sqs).send(messages(2))
    assert len(sqs.calls) == 3 and report.sent == []
    assert set(report.failed) == {"0", "1"} and all("ThrottlingException" in r for r in report.failed.values())


def test_a_message_over_the_limit_is_refused_without_a_call() -> None:
    big = OutboundMessage("big", "x" * (MAX_MESSAGE_BYTES + 1))
    sqs = FakeSqs(accept)
    report = writer(sqs).send([big, *messages(1)])
    assert sqs.calls == [["0"]]
    assert "larger than the SQS limit" in report.failed["big"]


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([1] * 11, [10, 1]),  # at most ten entries
        ([400 * 1024] * 3, [2, 1]),  # at most 1 MiB in total, not only per message
        ([MAX_BATCH_BYTES // 2, MAX_BATCH_BYTES // 2, 1], [2, 1]),  # exactly 1 MiB fits
    ],
)
def test_batches_keep_to_the_count_and_the_total_size(sizes: list[int], expected: list[int]) -> None:
    batch = [OutboundMessage(str(i), "x" * size) for i, size in enumerate(sizes)]
    assert [len(b) for b in sqs_batches(batch)] == expected
    assert [m for b in sqs_batches(batch) for m in b] == batch  # in order, none lost


def test_attributes_count_towards_the_size() -> None:
    attributes = {"order_id": {"DataType": "String", "StringValue": "1001"}}
    assert OutboundMessage("0", "ab", attributes).size == 2 + len("order_id") + len("String") + len("1001")
    near = MAX_BATCH_BYTES // 2 - 10
    with_attributes = [OutboundMessage(str(i), "x" * near, attributes) for i in range(2)]
    assert [len(b) for b in sqs_batches(with_attributes)] == [1, 1]  # the bodies alone would fit in one
