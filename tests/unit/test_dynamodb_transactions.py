"""The DynamoDB store's answers to what DynamoDB Local never produces: transaction conflicts.

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

from traede_export import ledger_store
from traede_export.errors import PartialWrite
from traede_export.ledger_store import TRANSACT_ATTEMPTS, DynamoStore, Update


def updates(*keys: int) -> list[Update]:
    return [Update(f"order#sys#{k}", "SET a = :a", "attribute_not_exists(b)", {":a": {"S": "x"}}) for k in keys]


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoStore, Stubber]]:
    monkeypatch.setattr(ledger_store, "_backoff", lambda attempt: None)  # no sleeping in the unit tier
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stub:
        yield DynamoStore(client, "ledger"), stub
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


def test_a_conflicted_item_is_retried_and_a_failed_condition_is_not(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    cancelled(stub, "None", "ConditionalCheckFailed", "TransactionConflict")
    transact_of(stub, 2)  # orders 1 and 3 again, without order 2
    assert store.update_many(updates(1, 2, 3)) == [True, False, True]


def test_conflicts_that_persist_fall_back_to_one_update_each(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    for _ in range(TRANSACT_ATTEMPTS):
        cancelled(stub, "TransactionConflict", "None")
    stub.add_response("update_item", {})
    stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException", http_status_code=400)
    assert store.update_many(updates(1, 2)) == [True, False]


def test_a_plain_write_that_meets_a_transaction_is_retried(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    stub.add_client_error("update_item", service_error_code="TransactionConflictException", http_status_code=400)
    stub.add_response("update_item", {})
    assert store.update(updates(1)[0])


def test_a_validation_error_fails_its_item_alone(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    cancelled(stub, "None", "ValidationError")
    stub.add_response("update_item", {})  # order 1 alone, as one UpdateItem
    with pytest.raises(PartialWrite) as raised:
        store.update_many(updates(1, 2))
    assert raised.value.results == [True, None]


def test_a_failed_transaction_keeps_the_writes_before_it(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    transact_of(stub, 100)
    stub.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException")
    with pytest.raises(PartialWrite) as raised:
        store.update_many(updates(*range(150)))
    assert raised.value.results == [True] * 100 + [None] * 50


def test_when_no_write_took_effect_the_error_itself_is_raised(stubbed: tuple[DynamoStore, Stubber]) -> None:
    store, stub = stubbed
    stub.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException")
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        store.update_many(updates(1, 2))
