"""A third adversarial review: paging, invalid entries and the poller's alarms. One test per defect.

Each test failed on the code it names and passes with the fix committed next to it. Real
handlers against moto, DynamoDB Local and the local HTTP servers (the `make_stack` fixture).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_attack import HangingServer, poll_in_thread
from test_contract import SYSTEM, eligible, send_order

from traede_export.claim_check import Pointer
from traede_export.models import Attr, OrderRef, order_attributes, version_of
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli, output
from traede_ops.ops import dead_letters, peek_messages

pytestmark = pytest.mark.faults


def after_first_export_page(stack: LocalStack, change: Any) -> None:
    """Run `change` on the sandbox right after it served the first export page: Traede moving mid-run."""
    sandbox = stack.sandbox
    served = sandbox._export
    calls = 0

    def export(query: str) -> Any:
        nonlocal calls
        reply = served(query)
        calls += 1
        if calls == 1:
            change()
        return reply

    sandbox._export = export  # type: ignore[method-assign]


def test_an_edit_seen_on_a_later_page_of_the_same_poll_is_not_dropped_as_a_duplicate(make_stack: MakeStack) -> None:
    """Offset paging over a moving set: an order inserted before it pushes an order from page 0 onto
    page 1, edited meanwhile. The poll dropped the edit as "a duplicate" by id, delivered the older
    version and marked the order: Traede counts the edit as exported, the ERP never got it."""
    stack = make_stack(orders=4)
    sandbox, receiver = stack.sandbox, stack.receiver
    sandbox.server_page_size = 2
    first, moved = eligible(stack)[:2]
    edited: list[str] = []

    def change() -> None:
        sandbox.add_orders([{**sandbox.order(first), "id": 1}])  # sorts before every seeded order
        edited.append(sandbox.edit(moved))

    after_first_export_page(stack, change)
    stack.poll()
    stack.event_source().drain()

    newest = version_of(edited[0])
    assert any(key.endswith(f":{moved}:{newest}") for key in receiver.keys_by_order()[moved]), (
        "the ERP never received the edit that Traede now counts as exported"
    )
    assert moved not in sandbox.pending(SYSTEM)


def test_paging_stalled_behind_a_page_of_invalid_entries_is_reported(make_stack: MakeStack) -> None:
    """Traede ignores `page` and its one page holds only entries that are not orders: they are parked
    once and stay pending, so every poll fetches the same page and the orders behind it never move.
    PagingStalled counted only refused or in-flight orders, so this stall said nothing of starving."""
    stack = make_stack(orders=3, paging="ignore_page", overrides={"EXPORT_PAGE_SIZE": "2"})
    sandbox = stack.sandbox
    waiting = eligible(stack)
    sandbox.add_orders([{"id": i, "updated_at": "not an instant"} for i in (1, 2)])

    for _ in range(2):  # the first poll parks them, the next ones only see them again
        result = stack.poll()
        assert result["enqueued"] == 0 and result["invalid"] == 2
        assert result["paging_stalled"], "the orders behind the page starve without PagingStalled"
    assert set(waiting) <= set(sandbox.pending(SYSTEM))


def test_an_export_entry_whose_parking_failed_is_parked_by_a_later_poll(make_stack: MakeStack) -> None:
    """The entry's one sighting was recorded before it was parked: when the park failed (here its S3
    upload, the bucket briefly gone), no later poll parked it, and InvalidOrdersAlarm pointed at an
    empty DLQ for as long as Traede listed it."""
    stack = make_stack(orders=0, overrides={"LARGE_ORDER_THRESHOLD_BYTES": "1024"}, dynamodb="local")
    stack.sandbox.add_orders([{"id": 7001, "updated_at": "last Tuesday", "note": "x" * 4000}])
    stack.s3.delete_bucket(Bucket=stack.bucket)
    assert stack.poll()["invalid"] == 1
    assert stack.dlq_messages() == []

    stack.s3.create_bucket(Bucket=stack.bucket)
    assert stack.poll()["invalid"] == 1
    assert stack.poll()["invalid"] == 1  # and still parked once
    (parked,) = stack.dlq_messages()
    assert "not an instant" in parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]


def export_entry_with_id(stack: LocalStack, entry_id: Any) -> None:
    """An export entry whose `id` is not an integer (the sandbox itself only stores integer ids)."""
    stack.sandbox.add_orders([{"id": 5, "updated_at": "2026-01-02T03:04:05Z"}])
    stack.sandbox._orders[5]["id"] = entry_id


def test_an_export_entry_whose_string_id_is_a_lone_surrogate_does_not_crash_the_poll(make_stack: MakeStack) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); the id went verbatim into the DLQ copy's
    order_id attribute, which is not UTF-8-encodable: the poll crashed, and the spent sighting
    kept the entry out of the DLQ for good."""
    stack = make_stack(orders=2)
    export_entry_with_id(stack, json.loads('"\\ud800"'))
    result = stack.poll()
    assert result["invalid"] == 1 and result["enqueued"] == 2
    (parked,) = stack.dlq_messages()
    assert "integer 'id'" in parked["MessageAttributes"][Attr.FAILURE_REASON]["StringValue"]


def test_an_export_entry_with_a_huge_string_id_is_parked(make_stack: MakeStack) -> None:
    """The body goes to S3 when large, but the id was copied whole into the order_id attribute:
    the DLQ copy passed SQS's 1 MiB and was never parked."""
    stack = make_stack(orders=1)
    export_entry_with_id(stack, "7" * (1100 * 1024))
    assert stack.poll()["invalid"] == 1
    (parked,) = stack.dlq_messages()
    assert len(parked["MessageAttributes"][Attr.ORDER_ID]["StringValue"]) <= 100


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


def test_an_unreadable_pointer_whose_order_id_attribute_has_thousands_of_digits_fails_alone(
    make_stack: MakeStack,
) -> None:
    """ASCII digits, yet int() refuses more than 4,300 of them (ValueError, not InvalidOrder): the
    read of one record whose object is missing crashed the invocation and returned the whole batch."""
    stack = make_stack(orders=3)
    sandbox, receiver = stack.sandbox, stack.receiver
    good = eligible(stack)[0]
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(sandbox.order(good)))
    attributes: dict[str, Any] = order_attributes(SYSTEM, OrderRef(1, "2026-01-02T03:04:05Z"), "run-attack", None)
    attributes[Attr.ORDER_ID]["StringValue"] = "7" * 5000
    pointer = Pointer(stack.bucket, "orders/1/gone.json").body()
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=pointer, MessageAttributes=attributes)

    source = stack.event_source()
    assert source.poll_once() == 2
    assert source.stats.crashes == 0 and source.stats.failures == 1
    assert receiver.delivered_ids() == {good} and good in sandbox.exported(SYSTEM)


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


def test_a_stalled_secrets_manager_fails_the_invocation_within_its_time_not_at_lambdas_timeout(
    make_stack: MakeStack,
) -> None:
    """boto3's defaults (60 s read timeout, several attempts) let one stalled GetSecretValue outlive
    the forwarder, with every POST thread waiting behind the reader's lock: a Lambda timeout instead
    of the CredentialsError that names the secret."""
    hanging = HangingServer()
    try:
        stack = make_stack(
            orders=3, overrides={"AWS_ENDPOINT_URL_SECRETS_MANAGER": hanging.url, "HTTP_READ_TIMEOUT": "1"}
        )
        send_order(stack, stack.sandbox.order(eligible(stack)[0]))
        stack.forwarder.timeout = 20
        source = stack.event_source()
        done, elapsed = poll_in_thread(source.poll_once, stack.forwarder.budget)
    finally:
        hanging.close()
    done.join(timeout=60)
    assert elapsed < stack.forwarder.budget and source.stats.timeouts == 0, elapsed
    assert source.stats.crashes == 1  # CredentialsError fails the invocation: ForwarderErrorsAlarm
    assert stack.receiver.delivered_ids() == set()
