"""A replayed sample event can never mark, or supersede, the real order with its id.

The bundled samples (`events/`) describe a fictional order 4711 with a late `updated_at`. Put on
the queue of a stack whose Traede holds a real order 4711, a sample must reach the ERP (that is
what a test event is for) and do nothing else: no mark in Traede, no version in the ledger, no
real copy superseded. And `replay` refuses to send one to a deployed stack unless asked to.
"""

from __future__ import annotations

import json
import os

import boto3
import pytest

from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef, idempotency_key
from traede_local.events import EVENTS, load_event
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
SAMPLE_ID = 4711


def test_a_replayed_sample_is_delivered_and_never_marks_or_supersedes_the_real_order(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=1)
    real = {**load_event("order"), "order_number": "PO-4711-REAL", "updated_at": "2026-10-01 08:00:00"}
    real.pop("_traede_export_sample", None)  # Traede's own order 4711: an older version than the sample's
    stack.sandbox.add_orders([real])
    real_key = idempotency_key(SYSTEM, OrderRef.from_order(real))
    assert stack.poll()["enqueued"] == 2  # the real 4711 and one seeded order
    where = ["--queue-url", stack.queue_url, "--system-id", SYSTEM, "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]]
    assert cli.main(["replay", str(EVENTS / "sqs-order.json"), *where]) == cli.EXIT_OK  # a local stack: allowed

    stack.event_source().drain(max_seconds=30)  # the sample and the real copy meet in one batch

    keys = stack.receiver.keys_by_order()[SAMPLE_ID]
    assert real_key in keys  # the real version was delivered, not superseded by the sample's later one
    (sample_key,) = keys - {real_key}
    assert sample_key.endswith(":test-event")  # under its own key: never deduplicated against the real order
    assert stack.sandbox.notes[SAMPLE_ID].endswith(real_key)  # the one mark made was the real version's
    assert len([call for call in stack.sandbox.mark_calls if SAMPLE_ID in call]) == 1
    entry = ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM).get_many([SAMPLE_ID])[SAMPLE_ID]
    assert entry.delivered_version == entry.marked_version == OrderRef.from_order(real).version
    assert stack.dlq_messages() == []

    # Replayed again, after the real order was marked: delivered again, still nothing else.
    marks = len(stack.sandbox.mark_calls)
    assert cli.main(["replay", str(EVENTS / "order.json"), *where]) == cli.EXIT_OK
    stack.event_source().drain(max_seconds=30)
    assert len(stack.receiver.keys_by_order()[SAMPLE_ID]) == 2 and stack.receiver.attempts_for(SAMPLE_ID) == 3
    assert len(stack.sandbox.mark_calls) == marks
    assert (
        ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM).get_many([SAMPLE_ID])[SAMPLE_ID]
        == entry
    )


@pytest.mark.parametrize("sample", ["sqs-order.json", "order.json"])
def test_replay_refuses_a_sample_against_a_deployed_stack(
    sample: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "https://sqs.eu-west-1.example.invalid")  # not local; never reached
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/traede-export-orders"
    capsys.readouterr()
    code = cli.main(["replay", str(EVENTS / sample), "--queue-url", queue, "--system-id", SYSTEM, "--json"])
    (report,) = json.loads(capsys.readouterr().out)["files"]
    assert code == cli.EXIT_FAILURE and report["sent"] == []
    assert "test event" in report["error"] and "--allow-samples" in report["error"]
