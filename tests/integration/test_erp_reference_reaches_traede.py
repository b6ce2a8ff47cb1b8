"""The ERP's reference reaches Traede's timeline: read from the answer's body or its `Location`,
kept in the ledger with the delivered key, and written into the note of the order's mark.

The real handlers on moto, DynamoDB Local, the Traede sandbox and the local receiving system, which
answers each stored order with its own document number in the body and in `Location`.
"""

from __future__ import annotations

import boto3
import pytest

from traede_export.errors import MappingError
from traede_export.ledger import ExportLedger
from traede_local.local_stack import LocalStack, MakeStack

SYSTEM = "local-erp"
FROM_BODY = "body.document_number"
FROM_LOCATION = '$substringAfter(headers.location, "/orders/")'


def ledger(stack: LocalStack) -> ExportLedger:
    return ExportLedger.on_dynamodb(boto3.client("dynamodb"), stack.table, SYSTEM)


@pytest.mark.parametrize("expression", [FROM_BODY, FROM_LOCATION], ids=["body", "location"])
def test_each_marks_note_names_the_erps_document_and_the_ledger_keeps_it(
    make_stack: MakeStack, expression: str
) -> None:
    stack: LocalStack = make_stack(orders=12, parameters={"TargetReference": expression})
    stack.poll()
    stack.event_source().drain(max_seconds=60)

    stored = {d.order_id: d for d in stack.receiver.deliveries}
    marked = stack.sandbox.exported(SYSTEM)
    assert marked and marked == set(stored)
    entries = ledger(stack).read(marked)
    for order_id in marked:
        document, key = stored[order_id].document, stored[order_id].idempotency_key
        assert document.startswith("ERP-")
        assert stack.sandbox.notes[order_id] == f"ERP reference {document} \u00b7 Idempotency-Key {key}"
        assert (entries[order_id].delivered_key, entries[order_id].delivered_reference) == (key, document)


def test_without_an_expression_the_note_is_as_before(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3)
    stack.poll()
    stack.event_source().drain(max_seconds=60)
    for delivery in stack.receiver.deliveries:
        assert stack.sandbox.notes[delivery.order_id] == (
            f"Delivered by traede-export, Idempotency-Key {delivery.idempotency_key}"
        )
        assert ledger(stack).read([delivery.order_id])[delivery.order_id].delivered_reference == ""


def test_an_expression_that_does_not_compile_fails_the_cold_start(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=1, parameters={"TargetReference": "body.("})
    with pytest.raises(MappingError, match="TARGET_REFERENCE does not compile"):
        stack.forwarder.cold_start()
