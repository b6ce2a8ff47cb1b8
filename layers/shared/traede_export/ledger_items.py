"""How a ledger item reads: the entry it gives, after adopting what an older release wrote.

An older release left versions as raw text, instants as text (`delivered_at`, `marked_at`) and
mark records without a token. Each is adopted when an item is read, in the item and, when the
reader may write (`repair`), in the table too: a conditional write while the field is unchanged,
so two readers agree and a failed write is simply tried again at the next read.
"""

from __future__ import annotations

import contextlib
import re

from botocore.exceptions import BotoCoreError, ClientError

from traede_export import protocol
from traede_export.ledger_store import Item, Store, Update
from traede_export.models import epoch_ms
from traede_export.protocol import LedgerEntry

# What `models.version_of` writes; anything else in a version field came from an older release.
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
VERSION_FIELDS = (
    "enqueued_version",
    "delivering_version",
    "sent_version",
    "delivered_version",
    "marked_version",
    "rejected_version",
)
TEXT_INSTANTS = (("delivered_ms", "delivered_at"), ("marked_ms", "marked_at"))


def adopt_older_release(store: Store, item: Item, repair: bool) -> None:
    _forget_unreadable_versions(store, item, repair)
    _adopt_text_instants(store, item, repair)
    _adopt_untokened_mark(store, item, repair)


def _write(store: Store, update: Update, repair: bool) -> None:
    if repair:
        with contextlib.suppress(ClientError, BotoCoreError):  # read alike all the same; retried next read
            store.update(update)


def _forget_unreadable_versions(store: Store, item: Item, repair: bool) -> None:
    """Drop versions stored as raw text: compared as text, they could block the order forever."""
    for name in VERSION_FIELDS:
        value = item.get(name, {}).get("S")
        if value is None or _VERSION.match(value):
            continue
        item.pop(name)
        _write(store, Update(item["pk"]["S"], f"REMOVE {name}", f"{name} = :old", {":old": {"S": value}}), repair)


def _adopt_text_instants(store: Store, item: Item, repair: bool) -> None:
    """Give a text instant its `*_ms`, which the guards compare (a re-export's lease asks
    `delivered_ms < :since`); one that does not parse reads as 0 (long ago), as before."""
    for name, legacy in TEXT_INSTANTS:
        text = item.get(legacy, {}).get("S")
        if name in item or text is None:
            continue
        try:
            ms = {"N": str(epoch_ms(text))}
        except ValueError:
            ms = {"N": "0"}
        item[name] = ms
        condition = f"attribute_not_exists({name}) AND {legacy} = :old"
        _write(store, Update(item["pk"]["S"], f"SET {name} = :ms", condition, {":ms": ms, ":old": {"S": text}}), repair)


def _adopt_untokened_mark(store: Store, item: Item, repair: bool) -> None:
    """Give a mark record without a `mark_token` one, so the mark guard can name it; derived from
    its instant, so two readers write the same one."""
    if "marked_version" not in item or "mark_token" in item:
        return
    token = {"S": f"legacy-{item.get('marked_ms', {}).get('N', '0')}"}
    item["mark_token"] = token
    condition = "attribute_not_exists(mark_token) AND marked_version = :mv"
    values = {":t": token, ":mv": dict(item["marked_version"])}
    _write(store, Update(item["pk"]["S"], "SET mark_token = :t", condition, values), repair)


def order_id_of(item: Item) -> int:
    return int(item["pk"]["S"].rsplit("#", 1)[1])


def entry_of(item: Item) -> LedgerEntry:
    """The entry an item (as adopted) gives; an absent field reads as "" or 0."""

    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    return LedgerEntry(
        order_id=order_id_of(item),
        enqueued_version=text("enqueued_version"),
        enqueued_ms=number("enqueued_ms"),
        run_id=text("run_id"),
        lease_until=number("lease_until"),
        claim_token=text("claim_token"),
        delivering_version=text("delivering_version"),
        delivering_key=text("delivering_key"),
        delivering_until=number("delivering_until"),
        delivering_token=text("delivering_token"),
        sent_version=text("sent_version"),
        delivered_version=text("delivered_version"),
        delivered_key=text("delivered_key"),
        delivered_ms=number("delivered_ms"),
        delivered_reference=text(protocol.REFERENCE),
        marked_version=text("marked_version"),
        marked_ms=number("marked_ms"),
        mark_token=text("mark_token"),
        rejected_version=text("rejected_version"),
        rejected_reason=text("rejected_reason"),
        rejected_ms=number("rejected_ms"),
    )
