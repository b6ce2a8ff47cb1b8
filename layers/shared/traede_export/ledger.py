"""The export ledger: one DynamoDB item per order, written only with conditional updates.

It remembers which version of an order is in flight (a lease taken by the poller), which
version reached the receiving system, and which was marked as exported. Versions are
sortable strings (see `models.version_of`), so "never go backwards" is a condition.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from traede_export.models import OrderRef, chunk, epoch_ms

RETENTION_SECONDS = 90 * 24 * 3600  # TTL: long after any redelivery or replay window
MAX_BATCH_GET = 100


@dataclass(frozen=True)
class LedgerEntry:
    order_id: int
    enqueued_version: str = ""
    enqueued_ms: int = 0
    run_id: str = ""
    lease_until: int = 0
    delivering_version: str = ""
    delivered_version: str = ""
    delivered_key: str = ""
    delivered_ms: int = 0
    marked_version: str = ""
    marked_ms: int = 0
    rejected_version: str = ""


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _now_ms() -> int:
    return int(time.time() * 1000)


# What `models.version_of` writes; anything else in a version field came from an older release.
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
VERSION_FIELDS = ("enqueued_version", "delivering_version", "delivered_version", "marked_version", "rejected_version")
DELIVERY_LEASE = "delivering_version, delivering_key, delivering_until"


class ExportLedger:
    def __init__(self, dynamodb: Any, table_name: str, system_id: str) -> None:
        self._db = dynamodb
        self.table_name = table_name
        self._system_id = system_id

    def _key(self, order_id: int) -> dict[str, Any]:
        return {"pk": {"S": f"order#{self._system_id}#{order_id}"}}

    def _update(
        self,
        order_id: int,
        assignments: str,
        values: dict[str, Any],
        condition: str | None,
        remove: str | None = None,
    ) -> bool:
        """Run one UpdateItem, renewing the TTL; False when its condition did not hold."""
        values[":ttl"] = {"N": str(int(time.time()) + RETENTION_SECONDS)}
        sets = ", ".join(filter(None, (assignments, "expires_at = :ttl")))
        expression = f"SET {sets}" + (f" REMOVE {remove}" if remove else "")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._key(order_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            request["ConditionExpression"] = condition
        try:
            self._db.update_item(**request)
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def claim(self, ref: OrderRef, run_id: str, lease_seconds: int, force: bool = False) -> bool:
        """Take the in-flight lease for this version; False if it is in flight or was refused.

        `force` (a re-export) takes it regardless: the operator asked for these orders again.
        A version the receiving system refused is not claimed again: only a new version, a
        replay or a redrive sends it again.
        """
        now = int(time.time())
        values = {
            ":v": {"S": ref.version},
            ":until": {"N": str(now + lease_seconds)},
            ":run": {"S": run_id},
            ":ms": {"N": str(_now_ms())},
        }
        condition = None
        if not force:
            values[":now"] = {"N": str(now)}
            condition = (
                "(attribute_not_exists(enqueued_version) OR enqueued_version < :v OR lease_until < :now)"
                " AND (attribute_not_exists(rejected_version) OR rejected_version <> :v)"
            )
        return self._update(
            ref.order_id,
            "enqueued_version = :v, lease_until = :until, run_id = :run, enqueued_ms = :ms",
            values,
            condition,
        )

    def release(self, ref: OrderRef, run_id: str) -> bool:
        """Give back a lease this run took but could not use (the send failed)."""
        return self._update(
            ref.order_id,
            "lease_until = :zero",
            {":zero": {"N": "0"}, ":v": {"S": ref.version}, ":run": {"S": run_id}},
            "enqueued_version = :v AND run_id = :run",
        )

    def begin_delivery(self, ref: OrderRef, seconds: int, key: str) -> bool:
        """Take the delivery lease: one version of an order on its way to the ERP at a time.

        False when another delivery holds the lease or a newer version already was delivered, so
        a slow POST of an older version can never land after a newer one. The holder is known by
        its Idempotency-Key: a retry of the same message after a crash re-enters its own lease,
        while another copy of the same version under another key (a re-export) waits. The lease
        outlives the invocation only by `seconds`, so a killed Lambda does not block the order for long.
        """
        now = int(time.time())
        return self._update(
            ref.order_id,
            "delivering_version = :v, delivering_key = :k, delivering_until = :until",
            {":v": {"S": ref.version}, ":k": {"S": key}, ":until": {"N": str(now + seconds)}, ":now": {"N": str(now)}},
            "(attribute_not_exists(delivering_until) OR delivering_until < :now OR delivering_key = :k)"
            " AND (attribute_not_exists(delivered_version) OR delivered_version <= :v)",
        )

    def end_delivery(self, ref: OrderRef) -> bool:
        """Give the delivery lease back after a failed attempt."""
        return self._update(ref.order_id, "", {":v": {"S": ref.version}}, "delivering_version = :v", DELIVERY_LEASE)

    def record_delivery(self, ref: OrderRef, key: str) -> bool:
        """Remember the delivered version; False when a newer one was delivered first (never backwards).

        A delivery supersedes an earlier refusal (e.g. a redrive after the ERP was fixed), so a
        later poll may send the version again if its mark failed.
        """
        return self._update(
            ref.order_id,
            "delivered_version = :v, delivered_key = :k, delivered_ms = :ms",
            {":v": {"S": ref.version}, ":k": {"S": key}, ":ms": {"N": str(_now_ms())}},
            "attribute_not_exists(delivered_version) OR delivered_version <= :v",
            f"{DELIVERY_LEASE}, rejected_version, rejected_reason",
        )

    def record_rejection(self, ref: OrderRef, reason: str) -> bool:
        """Remember that the receiving system refused this version, so polls stop re-sending it."""
        return self._update(
            ref.order_id,
            "rejected_version = :v, rejected_reason = :r",
            {":v": {"S": ref.version}, ":r": {"S": reason[:500]}},
            None,
            DELIVERY_LEASE,
        )

    def record_marked(self, ref: OrderRef) -> bool:
        """Remember the marked version; an older one never overwrites a newer one."""
        return self._update(
            ref.order_id,
            "marked_version = :v, marked_ms = :ms",
            {":v": {"S": ref.version}, ":ms": {"N": str(_now_ms())}},
            "attribute_not_exists(marked_version) OR marked_version <= :v",
        )

    def first_sighting(self, fingerprint: str) -> bool:
        """True the first time an invalid export entry is seen (it is parked once, not per poll)."""
        try:
            self._db.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"invalid#{self._system_id}#{fingerprint}"},
                    "expires_at": {"N": str(int(time.time()) + RETENTION_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def get_many(self, order_ids: Iterable[int]) -> dict[int, LedgerEntry]:
        """Strongly consistent reads, so a redelivery sees the delivery that came just before."""
        found: dict[int, LedgerEntry] = {}
        for ids in chunk(sorted(set(order_ids)), MAX_BATCH_GET):
            request: dict[str, Any] = {self.table_name: {"Keys": [self._key(i) for i in ids], "ConsistentRead": True}}
            while request:
                answer = self._db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    self._forget_unreadable_versions(item)
                    entry = _entry(item)
                    found[entry.order_id] = entry
                request = answer.get("UnprocessedKeys") or {}
        return found

    def _forget_unreadable_versions(self, item: dict[str, Any]) -> None:
        """Drop versions an older release stored as raw text: compared as text, they could block the order forever.

        Removed only while unchanged (a conditional update), and dropped from `item` as if absent.
        """
        for name in VERSION_FIELDS:
            value = item.get(name, {}).get("S")
            if value is None or _VERSION.match(value):
                continue
            item.pop(name)
            with contextlib.suppress(ClientError):  # read as absent all the same; the next read tries again
                self._update(int(item["pk"]["S"].rsplit("#", 1)[1]), "", {":old": {"S": value}}, f"{name} = :old", name)

    def entries(self) -> Iterator[LedgerEntry]:
        """Every order of this system (a scan: for the status command, not the hot path)."""
        prefix = f"order#{self._system_id}#"
        for page in self._db.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": prefix}},
        ):
            for item in page.get("Items", []):
                yield _entry(item)

    def record_poll(self, run_id: str, summary: dict[str, int]) -> None:
        """The heartbeat of a successful poll, read by `status`."""
        item = {
            "pk": {"S": f"poller#{self._system_id}"},
            "run_id": {"S": run_id},
            "finished_at": {"N": str(int(time.time()))},
        }
        item.update({k: {"N": str(v)} for k, v in summary.items()})
        self._db.put_item(TableName=self.table_name, Item=item)

    def last_poll(self) -> dict[str, Any] | None:
        answer = self._db.get_item(
            TableName=self.table_name, Key={"pk": {"S": f"poller#{self._system_id}"}}, ConsistentRead=True
        )
        item = answer.get("Item")
        if not item:
            return None
        return {k: (int(v["N"]) if "N" in v else v["S"]) for k, v in item.items() if k != "pk"}


def _entry(item: dict[str, Any]) -> LedgerEntry:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    def ms(name: str, legacy: str) -> int:
        """`*_ms`, else the previous release's text timestamp (`delivered_at`, `marked_at`)."""
        if name in item or not text(legacy):
            return number(name)
        try:
            return epoch_ms(text(legacy))
        except ValueError:
            return 0

    return LedgerEntry(
        order_id=int(item["pk"]["S"].rsplit("#", 1)[1]),
        enqueued_version=text("enqueued_version"),
        enqueued_ms=number("enqueued_ms"),
        run_id=text("run_id"),
        lease_until=number("lease_until"),
        delivering_version=text("delivering_version"),
        delivered_version=text("delivered_version"),
        delivered_key=text("delivered_key"),
        delivered_ms=ms("delivered_ms", "delivered_at"),
        marked_version=text("marked_version"),
        marked_ms=ms("marked_ms", "marked_at"),
        rejected_version=text("rejected_version"),
    )
