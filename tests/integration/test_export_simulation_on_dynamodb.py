"""The export simulation (tests/helpers/simulation.py) with the ledger on DynamoDB Local: AWS's own
condition engine judges every guard of the protocol, across the interleavings Hypothesis draws.

Fewer examples than the unit tier's run on the in-memory store: each ledger call is a round trip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import pytest
from hypothesis import HealthCheck, settings

from helpers.simulation import ExportMachine
from traede_export.ledger_store import DynamoStore, Store

TABLE = "export-simulation"
_store: list[DynamoStore] = []


@pytest.fixture(scope="module", autouse=True)
def table(dynamodb_endpoint: str) -> Iterator[None]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="sim",
        aws_secret_access_key="sim",
    )
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    _store.append(DynamoStore(client, TABLE))
    yield
    _store.clear()
    client.delete_table(TableName=TABLE)


class DynamoExport(ExportMachine):
    def make_store(self) -> Store:
        return _store[0]  # each example writes under a system id of its own


DynamoExport.TestCase.settings = settings(
    max_examples=int(os.environ.get("SIM_DYNAMODB_EXAMPLES", "50")),
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TestDynamoExport = DynamoExport.TestCase
