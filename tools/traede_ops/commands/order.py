"""`traede-export order ID`: one order's story, from the ledger and the DLQ, and what happens next.

It only reads: the ledger's item for the order (`ExportLedger.read`, which repairs nothing) and a
look at the DLQ. The state of each version is the protocol's own (`protocol.state_of`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from traede_export.ledger import ExportLedger, LedgerEntry
from traede_export.models import OrderRef, idempotency_key, utc_text
from traede_export.protocol import STATES, State, state_of
from traede_ops import ops, where
from traede_ops.output import EXIT_OK, console, show
from traede_ops.parser import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("order_id", type=int, metavar="ID", help="the production order's id in Traede")


@dataclass
class Version:
    """One version of the order, as the ledger and the DLQ know it."""

    version: str
    state: str  # the protocol's word (protocol.State)
    meaning: str
    at: dict[str, str] = field(default_factory=dict)  # what happened to it (claimed, delivered, ...) -> when, UTC
    idempotency_key: str = ""
    key_recorded: bool = False  # False: the key a scheduled copy of it is POSTed under, computed
    reference: str | None = None  # the ERP's, kept with its delivery
    failure: str | None = None  # the last failure reason the ledger or the DLQ holds for it


@dataclass
class Dlq:
    read: bool
    how: str  # what the look did, or why there was none
    copies: list[dict[str, Any]] = field(default_factory=list)


def _when(ms: int) -> str:
    return utc_text(datetime.fromtimestamp(ms / 1000, UTC))


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M UTC on %Y-%m-%d")


def look_at_dlq(target: ops.Target, order_id: int) -> Dlq:
    """The order's copies on the DLQ, read without taking them, where a look can be made without harm."""
    if not target.dlq_url:
        return Dlq(False, "not read: no --dlq-url (or --stack)")
    sqs = ops.client("sqs", target.region)
    limit = ops.receive_limit(sqs, target.dlq_url)
    if limit is not None:
        return Dlq(
            False,
            f"not read: the DLQ has a redrive policy (maxReceiveCount {limit}), and SQS cannot read a message"
            " without a receive that counts towards it; `redrive --dry-run` looks anyway",
        )
    letters = ops.dead_letters(sqs, target.dlq_url, wait_seconds=0 if ops.loopback_queue(sqs) else 1)
    how = (
        f"read by receiving each of its {len(letters)} message(s) and making it visible again at once: nothing"
        " taken; each look adds 1 to a message's receive count (redrive's 'attempts'), and the DLQ has no"
        " redrive policy, so no receive limit applies"
    )
    if len(letters) >= ops.PEEK_LIMIT:
        how += f"; only the first {ops.PEEK_LIMIT} were looked at"
    copies = [d.summary() for d in letters if d.order_id == order_id]
    return Dlq(True, how, copies)


def versions_of(entry: LedgerEntry | None, order_id: int, system_id: str, dlq: Dlq, now: float) -> list[Version]:
    """Every version the ledger or the DLQ names, newest first, each in the protocol's words."""
    known = {c["version"] for c in dlq.copies if c.get("version")}
    if entry is not None:
        named = (entry.enqueued_version, entry.delivering_version, entry.sent_version, entry.delivered_version)
        known |= {v for v in (*named, entry.marked_version, entry.rejected_version) if v}
    found = []
    for v in sorted(known, reverse=True):
        state = state_of(entry, v, now)
        version = Version(v, state.value, STATES[state])
        e = entry or LedgerEntry(order_id)
        if e.enqueued_version == v and e.enqueued_ms:
            version.at["claimed"] = _when(e.enqueued_ms)
            version.at["claim_lease_until"] = utc_text(datetime.fromtimestamp(e.lease_until, UTC))
        if e.delivering_version == v and e.delivering_until >= now:
            version.at["delivery_lease_until"] = utc_text(datetime.fromtimestamp(e.delivering_until, UTC))
        if e.delivered_version == v:
            version.at["delivered"] = _when(e.delivered_ms)
            version.idempotency_key, version.key_recorded = e.delivered_key, True
            version.reference = e.delivered_reference or None
        elif e.delivering_version == v and e.delivering_key:
            version.idempotency_key, version.key_recorded = e.delivering_key, True
        else:
            version.idempotency_key = idempotency_key(system_id, OrderRef(order_id, v))
        if e.marked_version == v:
            version.at["marked"] = _when(e.marked_ms)
        if e.rejected_version == v:
            if e.rejected_ms:  # an older release did not keep it
                version.at["refused"] = _when(e.rejected_ms)
            version.failure = e.rejected_reason or None
        parked = [c for c in dlq.copies if c.get("version") == v and c.get("last_error")]
        if parked and not version.failure:
            version.failure = parked[-1]["last_error"]
        found.append(version)
    return found


def what_next(entry: LedgerEntry | None, versions: list[Version], dlq: Dlq, now: float) -> str:
    """What happens next to the order, in a sentence."""
    if not versions:
        if entry is None:
            unseen = "not in the ledger and not on the DLQ: no poll has fetched it (or its entry expired 90 days"
            return f"{unseen} after its last change); `pending` shows whether Traede lists it now"
        return "the ledger knows no version of it: the next poll that Traede lists it in fetches it"
    newest = versions[0]
    state = State(newest.state)
    parked = [c for c in dlq.copies if c.get("version") == newest.version]
    if state is State.MARKED:
        if parked:
            return "delivered and marked; its copy on the DLQ is obsolete (a `redrive` finds it marked and stops)"
        return "delivered and marked"
    if state is State.DELIVERED:
        if parked:
            return (
                "delivered, not marked: its copy is parked on the DLQ; once the cause is fixed, `redrive` marks it"
                " without posting it again"
            )
        after = max(now, entry.lease_until if entry else now)
        return (
            "delivered, not marked yet: the next try of its queued copy marks it, or else the first poll after"
            f" {_clock(after)} fetches it again and marks it"
        )
    if state is State.REFUSED:
        if parked:
            return "refused by the ERP: fix the ERP (or the order in Traede), then `redrive`"
        return (
            "refused by the ERP, and no copy is on the DLQ: fix the order in Traede (an edit is a new version"
            " the next poll exports), or fix the ERP and `replay` the order"
        )
    if state is State.DELIVERING:
        until = entry.delivering_until if entry else now
        return f"a POST to the ERP is on its way (its lease holds until {_clock(until)}): the ERP's answer decides"
    if parked:
        reason = parked[-1].get("last_error")
        why = f": {reason}" if reason else " after its tries failed (the forwarder's logs say why, by order_id)"
        return f"parked on the DLQ{why}; fix the cause, then `redrive`"
    if state is State.CLAIMED:
        until = entry.lease_until if entry else now
        return (
            "queued: the forwarder delivers it on its next try; if it is lost, the first poll after"
            f" {_clock(until)} fetches it again"
        )
    if not dlq.read:
        return "its claim ran out without a delivery, and the DLQ was not read: it may be parked there"
    return "its claim ran out without a delivery: the next poll fetches it again, if Traede still lists it"


def story(target: ops.Target, order_id: int) -> dict[str, Any]:
    target.need("table", "system_id")
    system_id = target.value("system_id")
    ledger = ExportLedger.on_dynamodb(ops.client("dynamodb", target.region), target.value("table"), system_id)
    entry = ledger.read([order_id]).get(order_id)
    dlq = look_at_dlq(target, order_id)
    now = time.time()
    versions = versions_of(entry, order_id, system_id, dlq, now)
    return {
        "order_id": order_id,
        "system_id": system_id,
        "in_ledger": entry is not None,
        "versions": [asdict(v) for v in versions],
        "dlq": asdict(dlq),
        "next": what_next(entry, versions, dlq, now),
    }


def run(args: argparse.Namespace) -> int:
    data = story(where.target(args), args.order_id)
    if args.json:
        show(args, data, "")
        return EXIT_OK
    table = Table(title=f"order {data['order_id']} ({data['system_id']})")
    for column in ("version", "state", "when (UTC)", "Idempotency-Key", "ERP reference", "last failure"):
        table.add_column(column, overflow="fold")
    for v in data["versions"]:
        when = "\n".join(f"{what.replace('_', ' ')} {at}" for what, at in v["at"].items())
        key = v["idempotency_key"] + ("" if v["key_recorded"] else " (computed)")
        # Reasons and references quote the ERP's answers: text, never Rich markup.
        row = (v["version"], v["state"], when, key, v["reference"] or "", v["failure"] or "")
        table.add_row(*(escape(cell) for cell in row))
    if data["versions"]:
        console.print(table)
    dlq = data["dlq"]
    console.print(f"DLQ: {escape(dlq['how'])}", highlight=False)
    for c in dlq["copies"]:
        line = f"  {c['message_id']}: version {c['version'] or '?'}, attempts {c['attempts']}, sent {c['sent_at']}"
        reason = f", failure: {c['last_error']}" if c["last_error"] else ""
        console.print(escape(line + reason), highlight=False)
    if dlq["read"] and not dlq["copies"]:
        console.print("  no copy of this order", highlight=False)
    console.print(f"[bold]next:[/] {escape(data['next'])}", highlight=False)
    return EXIT_OK


COMMAND = Command(
    "order",
    "One order's story: each version in the ledger, its copies on the DLQ, what happens next.",
    add_arguments,
    run,
    description="Reads only: the ledger's item for the order and a look at the DLQ; it changes nothing.\n"
    "Each version the ledger or the DLQ knows is shown with its state in the protocol's words\n"
    "(claimed, delivering, delivered, marked, refused, superseded, unseen), when, its\n"
    "Idempotency-Key, the ERP's reference and the last failure reason. The DLQ is read by\n"
    "receiving each message and making it visible again at once; that adds 1 to each\n"
    "message's receive count, so a DLQ with a redrive policy is not read. The order queue is\n"
    "never read: a look would count towards its maxReceiveCount.",
)
