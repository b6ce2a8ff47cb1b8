"""The ledger's answers to what DynamoDB Local never produces: transaction conflicts.

DynamoDB Local serialises writes, so a TransactWriteItems there is never cancelled by a conflict
and a plain write never meets one (tried: 2 threads of 100-item transactions against 2 threads of
UpdateItems on one of their items, 8 s, no conflict). DynamoDB does both under overlapping writers.
botocore's Stubber gives a real client those answers; everything else about the ledger runs on
DynamoDB Local (tests/integration/test_ledger.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from traede_export import ledger as ledger_module
from traede_export.ledger import TRANSACT_ATTEMPTS, ExportLedger, PartialWrite
from traede_export.models import OrderRef

V = "2026-01-01T00:00:00.000000Z"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ExportLedger, Stubber]]:
    monkeypatch.setattr(ledger_module, "_backoff", lambda attempt: None)  # no sleeping in the unit tier
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield ExportLedger(client, "ledger", "sys"), stub
        stub.assert_no_pending_responses()


def cancelled(stub: Stubber, *codes: str) -> None:
    reasons: list[dict[str, Any]] = [{"Code": c} for c in codes]
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        http_status_code=400,
        response_meta={},
        modeled_fields={"CancellationReasons": reasons},
    )


def transact_of(stub: Stubber, count: int) -> None:
    stub.add_response("transact_write_items", {}, {"TransactItems": [{"Update": ANY}] * count})


def test_a_conflicted_item_is_retried_and_a_failed_condition_is_not(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    cancelled(stub, "None", "ConditionalCheckFailed", "TransactionConflict")
    transact_of(stub, 2)  # orders 1 and 3 again, without order 2
    refs = [OrderRef(i, V) for i in (1, 2, 3)]
    assert ledger.claim_many(refs, "run", 60) == [True, False, True]


def test_conflicts_that_persist_fall_back_to_one_update_each(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    for _ in range(TRANSACT_ATTEMPTS):
        cancelled(stub, "TransactionConflict", "None")
    stub.add_response("update_item", {})
    stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException", http_status_code=400)
    assert ledger.begin_marks([OrderRef(1, V), OrderRef(2, V)], 1) == [True, False]


def test_a_plain_write_that_meets_a_transaction_is_retried(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    stub.add_client_error("update_item", service_error_code="TransactionConflictException", http_status_code=400)
    stub.add_response("update_item", {})
    assert ledger.record_deliveries([(OrderRef(1, V), "key")]) == [True]


def test_a_validation_error_fails_its_item_alone(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    cancelled(stub, "None", "ValidationError")
    stub.add_response("update_item", {})  # order 1 alone, as one UpdateItem
    with pytest.raises(PartialWrite) as raised:
        ledger.begin_deliveries([(OrderRef(1, V), "k1"), (OrderRef(2, V), "k2")], 60)
    assert raised.value.results == [True, None]


def test_a_failed_transaction_keeps_the_writes_before_it(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    transact_of(stub, 100)
    stub.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException")
    with pytest.raises(PartialWrite) as raised:
        ledger.claim_many([OrderRef(i, V) for i in range(150)], "run", 60)
    assert raised.value.results == [True] * 100 + [None] * 50


def test_when_no_write_took_effect_the_error_itself_is_raised(stubbed: tuple[ExportLedger, Stubber]) -> None:
    ledger, stub = stubbed
    stub.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException")
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        ledger.begin_marks([OrderRef(1, V), OrderRef(2, V)], 1)
