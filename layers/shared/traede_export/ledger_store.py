"""Where the ledger's items live: DynamoDB, written one conditional update at a time or in transactions.

The store knows nothing of the protocol: it runs `Update`s (an update and a condition expression
with their values, as `protocol.TRANSITIONS` builds them) and reads items. The unit tier runs the
same ledger on an in-memory store that evaluates the same expressions
(`traede_local.memory_store.MemoryStore`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.errors import PartialWrite
from traede_export.models import chunk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_BATCH_GET = 100
MAX_TRANSACT = 100  # DynamoDB's limit of items per TransactWriteItems
TRANSACT_ATTEMPTS = 3  # transactions per chunk before the rest goes one UpdateItem at a time
CONFLICT_ATTEMPTS = 3  # a single write that met another's transaction on its item

Item = dict[str, dict[str, Any]]  # an item in DynamoDB's typed JSON: {"name": {"S": "text"}}


@dataclass(frozen=True)
class Update:
    """One conditional update of one item (created if absent, as UpdateItem does)."""

    key: str  # the item's `pk`
    expression: str  # `SET a = :a REMOVE b`
    condition: str  # "" for none
    values: dict[str, dict[str, Any]] = field(default_factory=dict)


class Store(Protocol):
    def update(self, update: Update) -> bool:
        """Run one update; False when its condition did not hold."""
        ...

    def update_many(self, updates: Sequence[Update]) -> list[bool]:
        """Run many, each with its own condition; one bool per update. Raises `PartialWrite`."""
        ...

    def get_many(self, keys: Sequence[str]) -> dict[str, Item]:
        """Strongly consistent reads of the items that exist, by key."""
        ...

    def get(self, key: str) -> Item | None:
        """One strongly consistent read (GetItem: what the operator's policy grants)."""
        ...

    def scan(self, prefix: str) -> Iterator[Item]: ...


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # jitter: two writers in step would meet again


class DynamoStore:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self.table_name = table_name

    def _request(self, update: Update) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": update.key}},
            "UpdateExpression": update.expression,
        }
        if update.values:
            request["ExpressionAttributeValues"] = update.values
        if update.condition:
            request["ConditionExpression"] = update.condition
        return request

    def update(self, update: Update) -> bool:
        return self._run(self._request(update))

    def _run(self, request: dict[str, Any]) -> bool:
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                self._db.update_item(**request)
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    return False
                # The item is in another writer's transaction right now; botocore does not retry this.
                if _code(exc) == "TransactionConflictException" and attempt + 1 < CONFLICT_ATTEMPTS:
                    _backoff(attempt)
                    continue
                raise
            return True
        raise AssertionError("unreachable")

    def update_many(self, updates: Sequence[Update]) -> list[bool]:
        """Many conditional updates in TransactWriteItems of up to 100; one bool per update.

        A transaction is all or nothing, but each item keeps its own condition: when one fails,
        DynamoDB cancels the call and its CancellationReasons say which items failed. Those are
        settled as False (exactly what their UpdateItem would have answered); the others are sent
        again. A conflict with another writer's transaction or a throttle is retried the same way,
        a few times with jitter; what is still left after that goes one UpdateItem at a time.
        A transaction may not touch an item twice, so a repeated key waits for a later round,
        where it sees the first one's write (as consecutive UpdateItems would).

        A write that fails otherwise does not stop the rest: the others are still written, then
        `PartialWrite` says which were (a caller must not lose writes that took effect, such as
        claims of orders it would then never enqueue). If none took effect, the error itself is raised.
        """
        requests = [self._request(u) for u in updates]
        results: list[bool | None] = [None] * len(requests)
        errors: list[Exception] = []
        pending = list(range(len(requests)))
        while pending:
            seen: set[str] = set()
            now: list[int] = []
            later: list[int] = []
            for i in pending:
                key = updates[i].key
                (later if key in seen else now).append(i)
                seen.add(key)
            for part in chunk(now, MAX_TRANSACT):
                self._transact(requests, part, results, errors)
            pending = later
        if errors:
            if all(r is None for r in results):
                raise errors[0]
            raise PartialWrite(results, errors[0])
        return [bool(r) for r in results]

    def _transact(
        self, requests: Sequence[dict[str, Any]], part: list[int], results: list[bool | None], errors: list[Exception]
    ) -> None:
        todo = part
        for attempt in range(TRANSACT_ATTEMPTS):
            if not todo:
                return
            if len(todo) == 1:
                break  # a transaction of one costs twice an UpdateItem's write units, for nothing
            try:
                self._db.transact_write_items(TransactItems=cast(Any, [{"Update": requests[i]} for i in todo]))
            except ClientError as exc:
                reasons: list[Any] = cast(Any, exc.response).get("CancellationReasons") or []
                if _code(exc) != "TransactionCanceledException" or len(reasons) != len(todo):
                    errors.append(exc)  # nothing of this part was written (a throttle past botocore's retries)
                    return
                again = []
                for i, reason in zip(todo, reasons, strict=True):
                    code = reason.get("Code") or "None"
                    if code == "ConditionalCheckFailed":
                        results[i] = False
                    elif code in ("None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"):
                        again.append(i)  # "None": its condition held, it was cancelled with the rest
                    else:
                        errors.append(exc)  # this item alone cannot be written (e.g. ValidationError)
                if any((r.get("Code") or "None") not in ("None", "ConditionalCheckFailed") for r in reasons):
                    _backoff(attempt)
                todo = again
                continue
            except BotoCoreError as exc:
                errors.append(exc)  # no answer: whether it was written is unknown
                return
            for i in todo:
                results[i] = True
            return
        for i in todo:
            try:
                results[i] = self._run(requests[i])
            except (ClientError, BotoCoreError) as exc:
                errors.append(exc)

    def get_many(self, keys: Sequence[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for part in chunk(sorted(set(keys)), MAX_BATCH_GET):
            request: dict[str, Any] = {
                self.table_name: {"Keys": [{"pk": {"S": k}} for k in part], "ConsistentRead": True}
            }
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    found[str(item["pk"]["S"])] = cast(Item, dict(item))
                request = dict(answer.get("UnprocessedKeys") or {})
        return found

    def get(self, key: str) -> Item | None:
        item = self._db.get_item(TableName=self.table_name, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        return dict(item) if item else None  # type: ignore[arg-type]

    def scan(self, prefix: str) -> Iterator[Item]:
        for page in self._db.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": prefix}},
        ):
            for item in page.get("Items", []):
                yield dict(item)  # type: ignore[arg-type]
