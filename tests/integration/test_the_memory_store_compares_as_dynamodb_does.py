"""The unit tier's in-memory store evaluates a condition as DynamoDB does, also `<>` with an attribute
that is absent or of another type (review 20, finding 7).

DynamoDB answers `x <> :v` true when `x` is absent or not of `:v`'s type; MemoryStore answers false
(its docstring says every comparison with a missing attribute is false). Today's guards pair each
`<>` with `attribute_not_exists`, so the protocol is not affected; a guard written without it would
pass on DynamoDB and fail in the unit tier and the simulation, which are meant to judge it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.ledger import dynamodb_table
from traede_local.memory_store import Condition

CASES = [
    ({}, "x <> :v", {":v": {"S": "1"}}),
    ({"x": {"N": "5"}}, "x <> :v", {":v": {"S": "5"}}),
    ({"x": {"N": "5"}}, "x < :v", {":v": {"S": "6"}}),
    ({}, "NOT (x = :v)", {":v": {"S": "1"}}),
    ({}, "x IN (:a, :b)", {":a": {"S": ""}, ":b": {"S": "b"}}),
    ({"x": {"S": "b"}}, "x IN (:a, :b)", {":a": {"S": ""}, ":b": {"S": "b"}}),
]


@pytest.fixture(scope="module")
def table(dynamodb_endpoint: str) -> Iterator[tuple[Any, str]]:
    with dynamodb_table(dynamodb_endpoint, "compare") as (client, name):
        yield client, name


@pytest.mark.parametrize(("attributes", "condition", "values"), CASES)
def test_a_condition_holds_in_memory_exactly_when_it_holds_on_dynamodb(
    table: tuple[Any, str], attributes: dict[str, Any], condition: str, values: dict[str, Any]
) -> None:
    client, name = table
    key = {"pk": {"S": uuid.uuid4().hex}}
    client.put_item(TableName=name, Item={**key, **attributes})
    try:
        client.update_item(
            TableName=name,
            Key=key,
            UpdateExpression="SET probed = :probed",
            ConditionExpression=condition,
            ExpressionAttributeValues={**values, ":probed": {"BOOL": True}},
        )
        on_dynamodb = True
    except client.exceptions.ConditionalCheckFailedException:
        on_dynamodb = False
    assert Condition(condition, values).holds({**key, **attributes}) is on_dynamodb
