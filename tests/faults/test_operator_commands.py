"""The operator's commands on odd dead letters and slow queues: they report, never crash,
and leave what they read where it was.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers.stack import send_message
from traede_export.models import Attr
from traede_local.local_stack import MakeStack
from traede_ops import cli, output
from traede_ops.ops import dead_letters, peek_messages

pytestmark = pytest.mark.faults


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


class SlowSqs:
    """SQS over a slow link, on a simulated clock: each ReceiveMessage takes `rtt` seconds, and a
    received message is visible again when its visibility timeout lapses (with a new receipt handle)."""

    def __init__(self, count: int, rtt: float) -> None:
        self.now, self.rtt, self.receives = 0.0, rtt, 0
        self.hidden_until = dict.fromkeys((f"m{i}" for i in range(count)), 0.0)
        self.handles: dict[str, str] = {}
        self.released: dict[str, str] = {}  # message id -> the handle its visibility was reset with

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, VisibilityTimeout: int, **_: Any) -> Any:
        self.receives += 1
        if self.receives > 100:
            raise AssertionError("the peek never ends: it keeps receiving messages it has seen")
        self.now += self.rtt
        visible = [m for m, until in self.hidden_until.items() if until <= self.now][:MaxNumberOfMessages]
        for m in visible:
            self.hidden_until[m] = self.now + VisibilityTimeout
            self.handles[m] = f"{m}@{self.receives}"
        return {"Messages": [{"MessageId": m, "ReceiptHandle": self.handles[m], "Body": "{}"} for m in visible]}

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        by_handle = {h: m for m, h in self.handles.items()}
        for e in Entries:
            if e["ReceiptHandle"] in by_handle:  # an older handle no longer changes anything
                self.released[by_handle[e["ReceiptHandle"]]] = e["ReceiptHandle"]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_a_dlq_peek_that_outlasts_the_visibility_timeout_ends_and_leaves_every_message_visible() -> None:
    """`status` looks at the DLQ with a 60 s visibility timeout. Over a slow link, a look at a few
    hundred messages outlasts it: the first ones come back, the receive is never empty, and the
    command never returned (the old receipt handles then no longer reset their visibility)."""
    sqs = SlowSqs(count=40, rtt=25.0)
    messages = peek_messages(sqs, "https://sqs.example/dlq", wait_seconds=0)
    assert sorted(m["MessageId"] for m in messages) == sorted(sqs.hidden_until)
    assert sqs.released == sqs.handles  # the newest handle of each: every message visible again


def test_status_lists_a_dead_letter_whose_order_id_attribute_has_thousands_of_digits(make_stack: MakeStack) -> None:
    """One such message on the DLQ made `status` and `redrive` fail with a ValueError from int()."""
    stack = make_stack(orders=0)
    attributes: dict[str, Any] = {Attr.ORDER_ID: {"DataType": "String", "StringValue": "7" * 5000}}
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}", MessageAttributes=attributes)
    (letter,) = dead_letters(stack.sqs, stack.dlq_url)
    assert letter.order_id is None


def test_redrive_shows_a_failure_reason_with_square_brackets_as_written(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason quotes the ERP's answer, e.g. a JSON pointer in brackets. The table read it as
    Rich markup: a closing tag crashed `redrive` (MarkupError), other bracketed words vanished."""
    stack = make_stack(orders=0)
    reasons = [
        "rejected by the receiving system: HTTP 422: [/lines/0/quantity] must be positive",
        "rejected by the receiving system: HTTP 400: [lines] is required",
    ]
    for reason in reasons:
        attributes: dict[str, Any] = {Attr.FAILURE_REASON: {"DataType": "String", "StringValue": reason}}
        stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{}", MessageAttributes=attributes)
    monkeypatch.setattr(output.console, "width", 400)  # no folding inside the words looked for
    capsys.readouterr()
    code = cli.main(["redrive", "--dlq-url", stack.dlq_url, "--dry-run"])
    shown = " ".join(capsys.readouterr().out.split())
    assert code == 0
    for words in ("[/lines/0/quantity] must be positive", "[lines] is required"):
        assert words in shown


def test_redrive_batch_by_batch_moves_orders_whose_batch_passes_one_mib(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Orders up to the 256 KiB threshold travel inline; ten received dead letters of 250 KB went
    back in one SendMessageBatch, which SQS refuses beyond 1 MiB in total (BatchRequestTooLong):
    `redrive --method batch`, and `auto` where the move task is missing, moved nothing."""
    stack = make_stack(orders=0)
    for i in range(6):
        body = json.dumps({"id": 100 + i, "updated_at": "2026-01-02T03:04:05Z", "note": "x" * 250_000})
        stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=body)
    capsys.readouterr()
    argv = ["redrive", "--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url, "--method", "batch", "--json"]
    code = cli.main(argv)
    capsys.readouterr()
    assert code == 0
    assert (stack.queue_depth(stack.queue_url), stack.queue_depth(stack.dlq_url)) == (6, 0)
