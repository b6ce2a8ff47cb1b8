"""The real `ExportLedger` on an in-memory store (or a fresh DynamoDB Local table), and ways to set and
read its entries directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any

import boto3

from traede_export.ledger import ExportLedger
from traede_export.ledger_store import Item, Update
from traede_export.protocol import LedgerEntry
from traede_local.memory_store import MemoryStore

SYSTEM = "erp"


@contextmanager
def dynamodb_table(endpoint: str, prefix: str) -> Iterator[tuple[Any, str]]:
    """A fresh ledger table (the template's key schema) on DynamoDB Local: (its client, its name)."""
    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield client, name
    finally:
        client.delete_table(TableName=name)


def memory_ledger(system_id: str = SYSTEM, store: MemoryStore | None = None) -> ExportLedger:
    return ExportLedger(store or MemoryStore(), system_id)


def store_of(ledger: ExportLedger) -> MemoryStore:
    assert isinstance(ledger.store, MemoryStore)
    return ledger.store


def seed(ledger: ExportLedger, entry: LedgerEntry, system_id: str = SYSTEM) -> None:
    """Put `entry` in the store as it stands (its empty fields absent), as an earlier write left it."""
    key = f"order#{system_id}#{entry.order_id}"
    item: Item = {"pk": {"S": key}}
    for f in fields(entry):
        value = getattr(entry, f.name)
        if f.name == "order_id" or value in ("", 0):
            continue
        item[f.name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    store_of(ledger).items[key] = item


def entry(ledger: ExportLedger, order_id: int) -> LedgerEntry:
    return ledger.get_many([order_id]).get(order_id, LedgerEntry(order_id))


def writes_setting(ledger: ExportLedger, attribute: str) -> list[list[Update]]:
    """The store calls (each a list of updates) with an update that sets `attribute`."""
    return [call for call in store_of(ledger).writes if any(f"{attribute} = " in u.expression for u in call)]
