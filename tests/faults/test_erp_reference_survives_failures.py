"""The ERP's reference is never lost because the mark came later, and an answer without one never
fails a delivery. The real handlers on the local stack; the ERP answers its document number in the
body and in `Location`."""

from __future__ import annotations

import boto3
import pytest

from helpers.stack import emitted_metrics
from traede_export.ledger import ExportLedger
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def test_a_mark_that_fails_is_retried_by_another_container_with_the_reference_from_the_ledger(
    make_stack: MakeStack,
) -> None:
    stack: LocalStack = make_stack(
        orders=6, parameters={"TargetReference": '$substringAfter(headers.location, "/orders/")'}
    )
    stack.poll()
    stack.sandbox.faults.error_rate = 1.0  # every mark-as-exported fails (after urllib3's retries)
    first = stack.event_source()
    assert first.poll_once() > 0 and first.stats.failures == first.stats.records  # delivered, none marked
    assert stack.sandbox.exported(SYSTEM) == set()
    stored = {d.order_id: d for d in stack.receiver.deliveries}

    stack.sandbox.faults.error_rate = 0.0
    other = LocalFunction(stack.forwarder.spec, overrides=dict(stack.options.overrides))  # a fresh container
    stack.event_source(other).drain(max_seconds=60)

    assert len(stack.receiver.deliveries) == len(stored)  # the retry only marked: no second POST
    assert stack.sandbox.exported(SYSTEM) >= set(stored)
    for order_id, delivery in stored.items():
        assert stack.sandbox.notes[order_id] == (
            f"ERP reference {delivery.document} \u00b7 Idempotency-Key {delivery.idempotency_key}"
        )


def test_an_answer_without_a_reference_is_delivered_marked_and_counted(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    expression = 'body.document_number ? body.document_number : $error("the ERP gave no document number")'
    stack: LocalStack = make_stack(orders=5, parameters={"TargetReference": expression})
    eligible = set(stack.sandbox.pending(SYSTEM))
    bare = min(eligible)
    stack.receiver.bare_ids = {bare}  # stored, answered 201 "stored": no document number
    stack.poll()
    capsys.readouterr()
    stack.event_source().drain(max_seconds=60)

    assert stack.sandbox.exported(SYSTEM) == eligible and stack.dlq_messages() == []
    keys = {d.order_id: d.idempotency_key for d in stack.receiver.deliveries}
    assert stack.sandbox.notes[bare] == f"Delivered by traede-export, Idempotency-Key {keys[bare]}"
    assert all(stack.sandbox.notes[i].startswith("ERP reference ERP-") for i in eligible - {bare})
    assert emitted_metrics(capsys.readouterr().out).get("ReferenceMissing") == 1
    (warning,) = [r for r in caplog.records if r.getMessage() == "no ERP reference in the answer"]
    assert warning.__dict__["order_id"] == bare and "the ERP gave no document number" in warning.__dict__["reason"]
    entry = ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM).read([bare])[bare]
    assert entry.delivered_key == keys[bare] and entry.delivered_reference == ""
