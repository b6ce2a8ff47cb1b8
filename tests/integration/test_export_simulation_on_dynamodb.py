"""The export simulation (tests/helpers/simulation.py) with the ledger on DynamoDB Local: AWS's own
condition engine judges every guard of the protocol, across the interleavings Hypothesis draws.

Fewer examples than the unit tier's run on the in-memory store: each ledger call is a round trip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from helpers.ledger import dynamodb_table
from helpers.simulation import ExportMachine
from traede_export.ledger_store import DynamoStore, Store

_store: list[DynamoStore] = []


@pytest.fixture(scope="module", autouse=True)
def table(dynamodb_endpoint: str) -> Iterator[None]:
    with dynamodb_table(dynamodb_endpoint, "export-simulation") as (client, table):
        _store.append(DynamoStore(client, table))
        yield
        _store.clear()


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
