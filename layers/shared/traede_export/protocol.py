"""The export protocol, stated once: the life of one order version in the ledger.

The ledger holds one item per order and system. Each write to it is a row of `TRANSITIONS`: who
may take it, its guard (a DynamoDB condition, checked atomically with the write) and its effect.
`ExportLedger` sends exactly these guards to DynamoDB; the unit tier's in-memory store evaluates
the same strings, so the fake cannot drift from the real thing. `plan` says what the copies of one
order in a forwarder batch do, given the order's entry; the forwarder and poller hold no rule of
their own. docs/architecture.md shows `state_table()`, and a test keeps the two equal.

Versions are sortable strings (`models.version_of`), so "never backwards" is a comparison.
Ownership is a token: each claim, delivery lease and mark record carries the token of the write
that made it. Only that write's second try (botocore resends a request whose answer was lost) or
its owner's take-back passes a guard that names the token; anyone else waits for expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from traede_export.models import Attr, epoch_ms

if TYPE_CHECKING:
    from traede_export.models import InboundOrder


@dataclass(frozen=True)
class LedgerEntry:
    """One order's item, as read (strongly consistent)."""

    order_id: int
    enqueued_version: str = ""  # the claim: the version a poll fetched and put on the queue
    enqueued_ms: int = 0
    run_id: str = ""
    lease_until: int = 0  # epoch seconds; the claim's in-flight lease
    claim_token: str = ""
    delivering_version: str = ""  # the delivery lease: one version on its way to the ERP at a time
    delivering_key: str = ""
    delivering_until: int = 0
    delivering_token: str = ""
    sent_version: str = ""  # the newest version ever POSTed (kept when the lease ends)
    delivered_version: str = ""  # the newest version the ERP accepted (2xx)
    delivered_key: str = ""
    delivered_ms: int = 0
    delivered_reference: str = ""  # the ERP's own reference for that delivery (TARGET_REFERENCE), "" if none
    marked_version: str = ""  # the mark record: written before the mark call, taken back if it fails
    marked_ms: int = 0
    mark_token: str = ""
    rejected_version: str = ""  # a version the ERP refused (4xx about its content)
    rejected_reason: str = ""
    rejected_ms: int = 0

    def newest(self) -> str:
        """The newest version the ledger knows of: claimed, sent, delivered or marked."""
        return max(self.enqueued_version, self.sent_version, self.delivered_version, self.marked_version)

    def arrived(self) -> str:
        """The newest version known to have reached the ERP: a mark follows a 2xx, even one whose
        delivery record failed (e.g. it met another writer's transaction on the item)."""
        return max(self.delivered_version, self.marked_version)

    def mark_token_of(self, version: str) -> str:
        """The token of this version's mark record, or "" if this version is not marked."""
        return self.mark_token if self.marked_version == version and version else ""


class State(StrEnum):
    """Where one version of an order stands, in the ledger's words."""

    UNSEEN = "unseen"  # no claim, lease or record names it (or its claim expired)
    CLAIMED = "claimed"  # a poll put it on the queue; its in-flight lease holds later polls back
    DELIVERING = "delivering"  # a forwarder holds its delivery lease: a POST may be on its way
    DELIVERED = "delivered"  # the ERP accepted it; not (yet) marked
    MARKED = "marked"  # its mark is recorded: made, or being made by the record's owner
    REFUSED = "refused"  # the ERP refused its content: polls skip it until an edit, replay or redrive
    SUPERSEDED = "superseded"  # a newer version was claimed, sent, delivered or marked


def state_of(entry: LedgerEntry | None, version: str, now: float) -> State:
    """The state of `version` of the entry's order at `now` (epoch seconds)."""
    if entry is None:
        return State.UNSEEN
    if entry.newest() > version:
        return State.SUPERSEDED
    if entry.marked_version == version:
        return State.MARKED
    if entry.delivered_version == version:
        return State.DELIVERED
    if entry.rejected_version == version:
        return State.REFUSED
    if entry.delivering_version == version and entry.delivering_until >= now:
        return State.DELIVERING
    if entry.enqueued_version == version and entry.lease_until >= now:
        return State.CLAIMED
    return State.UNSEEN


# ------------------------------------------------------------------------------------ guards
# Clauses shared by several rows. Values: :v the version written, :now epoch seconds, :token the
# writing request's own token, :seen the mark token as the batch read it ("" if none).


def _at_most_v(attribute: str) -> str:
    return f"(attribute_not_exists({attribute}) OR {attribute} <= :v)"


_NOT_DELIVERED_NEWER = _at_most_v("delivered_version")
# Nothing newer claimed, sent, delivered or marked: the ERP never goes back to older content.
_NOT_SUPERSEDED = " AND ".join(
    _at_most_v(a) for a in ("enqueued_version", "sent_version", "delivered_version", "marked_version")
)
_MARK = (
    " AND ".join(_at_most_v(a) for a in ("enqueued_version", "sent_version", "delivered_version"))
    + " AND (attribute_not_exists(marked_version) OR marked_version < :v"
    " OR (marked_version = :v AND mark_token IN (:seen, :token)))"
)
DELIVERY_LEASE = ("delivering_version", "delivering_key", "delivering_until", "delivering_token")
# The rows that end a delivery lease: only its holder's, or one that ran out (a late answer of an
# older POST must not free the lease of a live one).
_HOLDS_THE_LEASE = "(attribute_not_exists(delivering_token) OR delivering_token = :token OR delivering_until < :now)"
SENT = "sent_version"  # the newest version ever POSTed: it may have reached the ERP, even with no answer
MARK_RECORD = ("marked_version", "marked_ms", "mark_token")
REFERENCE = "delivered_reference"  # kept with the delivered key; removed when the ERP's answer gave none
DELIVERY_RECORD = ("delivered_version", "delivered_key", "delivered_ms", REFERENCE)
REJECTION = ("rejected_version", "rejected_reason", "rejected_ms")


@dataclass(frozen=True)
class Transition:
    """One row of the state table: a conditional write of one order's item."""

    name: str
    owner: str  # who takes it
    to: str  # the state the version is in after it
    guard: str  # a DynamoDB condition expression; "" for none
    sets: tuple[str, ...]  # attribute names, each set from the value `:<name>`
    removes: tuple[str, ...] = ()
    why: str = ""

    def update_expression(self, sets: tuple[str, ...] | None = None) -> str:
        """`SET a = :a, ... REMOVE b, ...`; `sets` overrides which attributes are set (undo_mark)."""
        names = self.sets if sets is None else sets
        parts = []
        if names:
            parts.append("SET " + ", ".join(f"{n} = :{n}" for n in names))
        removes = tuple(r for r in self.removes if r not in names)
        if removes:
            parts.append("REMOVE " + ", ".join(removes))
        return " ".join(parts)


CLAIM = Transition(
    "claim",
    owner="a poll run; `claim_token` is its write's own",
    to="claimed",
    guard=(
        "(attribute_not_exists(enqueued_version) OR enqueued_version < :v OR lease_until < :now"
        " OR claim_token = :token)"
        " AND (attribute_not_exists(rejected_version) OR rejected_version <> :v)"
    ),
    sets=("enqueued_version", "lease_until", "run_id", "enqueued_ms", "claim_token"),
    why="a version in flight or refused is skipped; a newer one or an expired lease goes through",
)
REEXPORT_CLAIM = Transition(
    "reexport_claim",
    owner="a re-export poll run",
    to="claimed",
    guard="",
    sets=CLAIM.sets,
    why="the operator asked for these orders again",
)
RELEASE = Transition(
    "release",
    owner="the poll run that claimed it (`run_id`)",
    to="unseen",
    guard="enqueued_version = :v AND run_id = :run_id",
    sets=("lease_until",),
    why="it could not be enqueued: the next poll takes it again",
)
HOLD = Transition(
    "hold",
    owner="the poll run that claimed it (`run_id`), once its message is on the queue",
    to="claimed",
    guard="enqueued_version = :v AND run_id = :run_id",
    sets=("lease_until",),
    why="a claim's first lease lasts only as long as its poll can run: a poll killed before its send"
    " strands nothing for long; once sent, the in-flight lease holds later polls back",
)
BEGIN_DELIVERY = Transition(
    "begin_delivery",
    owner="a forwarder batch; `delivering_token` is the batch's own",
    to="delivering",
    guard=(
        "(attribute_not_exists(delivering_until) OR delivering_until < :now OR delivering_token = :token)"
        " AND (attribute_not_exists(delivered_version) OR delivered_version <> :v OR delivered_ms < :since)"
        f" AND {_NOT_SUPERSEDED}"
    ),
    sets=(*DELIVERY_LEASE, SENT),
    why="one POST of an order on its way at a time, never older than what the ledger knows was claimed"
    " or sent; never again a version delivered since `:since` (a re-export's instant, else 0: a copy"
    " planned on a read made before another copy delivered it rides on that delivery); a live lease is"
    " never joined, even by a copy with the same Idempotency-Key",
)
END_DELIVERY = Transition(
    "end_delivery",
    owner="the lease's holder (`delivering_token`)",
    to="(as before the lease)",
    guard="delivering_token = :token",
    sets=(),
    removes=DELIVERY_LEASE,
    why="the POST was not started, or was refused (a 4xx the same for every order): the next copy need not"
    " wait for the lease",
)
SHORTEN_DELIVERY = Transition(
    "shorten_delivery",
    owner="the lease's holder (`delivering_token`), after a POST that failed",
    to="delivering",
    guard="delivering_token = :token",
    sets=("delivering_until",),
    why="a POST without a good answer keeps its lease a while (the ERP may still store it), then lets the"
    " next copy go; how long is the forwarder's setting, the whole lease by default",
)
RECORD_DELIVERY = Transition(
    "record_delivery",
    owner="the lease's holder, after a 2xx",
    to="delivered",
    guard=f"{_HOLDS_THE_LEASE} AND {_NOT_DELIVERED_NEWER}",
    sets=DELIVERY_RECORD,
    removes=(*DELIVERY_LEASE, *REJECTION, REFERENCE),
    why="never backwards, and never over another's live lease: refused means a newer version landed first"
    " (StaleDeliveries); the ERP's reference goes with the key (removed when its answer gave none)",
)
RECORD_REJECTION = Transition(
    "record_rejection",
    owner="the lease's holder, after a 4xx about the content",
    to="refused",
    guard=_HOLDS_THE_LEASE,
    sets=REJECTION,
    removes=DELIVERY_LEASE,
    why="polls stop re-sending a version the ERP refused",
)
FORGET_REJECTION = Transition(
    "forget_rejection",
    owner="a forwarder that found a large order's object gone",
    to="unseen",
    guard="rejected_version = :v",
    sets=(),
    removes=REJECTION,
    why="no redrive can send it again, so the next poll must",
)
RECORD_MARK = Transition(
    "record_mark",
    owner="a forwarder batch; `mark_token` is the batch's own",
    to="marked",
    guard=_MARK,
    sets=MARK_RECORD,
    why="written before the mark call: no newer version claimed, sent, delivered or marked, nor this"
    " one marked by another copy since the batch read it",
)
RECORD_DELIVERY_AND_MARK = Transition(
    "record_delivery_and_mark",
    owner="a forwarder batch, for its last 2xx",
    to="marked",
    guard=f"{_HOLDS_THE_LEASE} AND {_MARK}",
    sets=RECORD_DELIVERY.sets + MARK_RECORD,
    removes=RECORD_DELIVERY.removes,
    why="the batch's last delivery record carries its mark records: one ledger call fewer; the reference as in"
    " `record_delivery`",
)
UNDO_MARK = Transition(
    "undo_mark",
    owner="the batch that wrote the record (`mark_token`)",
    to="(the mark as before)",
    guard="marked_version = :v AND mark_token = :token",
    sets=MARK_RECORD,
    removes=MARK_RECORD,
    why="the mark failed or was never made: the retry marks (the fields are removed if there was no mark before)",
)

TRANSITIONS: tuple[Transition, ...] = (
    CLAIM,
    REEXPORT_CLAIM,
    HOLD,
    RELEASE,
    BEGIN_DELIVERY,
    END_DELIVERY,
    SHORTEN_DELIVERY,
    RECORD_DELIVERY,
    RECORD_REJECTION,
    FORGET_REJECTION,
    RECORD_MARK,
    RECORD_DELIVERY_AND_MARK,
    UNDO_MARK,
)


STATES = {
    State.UNSEEN: "no claim, lease or record names it (or its claim ran out)",
    State.CLAIMED: "a poll claimed it and put it on the queue; its in-flight lease (2 h) holds later polls back",
    State.DELIVERING: "a forwarder batch holds its delivery lease: a POST may be on its way",
    State.DELIVERED: "the ERP accepted it (2xx); not marked yet",
    State.MARKED: "its mark is recorded: made, or being made by the record's owner",
    State.REFUSED: "the ERP refused its content (4xx): polls skip it until an edit, a replay or a redrive",
    State.SUPERSEDED: "a newer version was claimed, sent, delivered or marked: it is never POSTed nor marked",
}


def state_table() -> str:
    """The states, the transitions and the plan as Markdown, for docs/architecture.md."""
    lines = ["### States", "", "| state | meaning |", "|---|---|"]
    lines += [f"| {state.value} | {meaning} |" for state, meaning in STATES.items()]
    lines += [
        "",
        "### Transitions",
        "",
        "| transition | owner | to | guard | effect | why |",
        "|---|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        effect = t.update_expression().replace(" REMOVE ", "; REMOVE ")
        guard = f"`{t.guard}`" if t.guard else "none"
        lines.append(f"| `{t.name}` | {t.owner} | {t.to} | {guard} | `{effect}` | {t.why} |")
    lines += ["", "### The plan: what the copies of one order in a batch do", "", "| step | when |", "|---|---|"]
    lines += [f"| {step.value} | {when} |" for step, when in STEPS.items()]
    return "\n".join(lines)


# -------------------------------------------------------------------------------- the plan


class Step(StrEnum):
    """What the newest copies of one order in a batch do."""

    DELIVER = "deliver"  # POST one copy under the delivery lease, then mark
    MARK = "mark"  # delivered before and not marked since: mark only
    ALREADY_MARKED = "already_marked"  # nothing to do
    SUPERSEDED = "superseded"  # a newer version is claimed, sent, delivered or marked: no POST, no mark
    WENT_BACKWARDS = "went_backwards"  # superseded, and Traede itself lists an older version (alarmed)


STEPS = {
    Step.SUPERSEDED: "the entry knows a newer version (claimed, sent, delivered or marked); older copies in the"
    " batch are superseded too",
    Step.WENT_BACKWARDS: "as superseded, but this copy comes from the poll that last claimed the order: Traede itself"
    " lists an older version than the ERP has (VersionWentBackwards)",
    Step.DELIVER: "the version is not known to have arrived, or a re-export copy of one delivered before its"
    " instant: take the delivery lease, POST one copy (a scheduled one first), then mark",
    Step.ALREADY_MARKED: "marked after its last delivery and after any poll that fetched it since: nothing to do",
    Step.MARK: "delivered, not marked since (or fetched again by a poll after its mark): mark only",
}


@dataclass(frozen=True)
class OrderPlan:
    step: Step
    current: list[InboundOrder]  # the copies of the newest version in the batch
    older: list[InboundOrder]  # copies of older versions in the same batch: superseded
    send: InboundOrder | None = None  # the copy to POST (DELIVER)

    @property
    def head(self) -> InboundOrder:
        return self.send or self.current[0]


def plan(copies: list[InboundOrder], entry: LedgerEntry | None, system_id: str) -> OrderPlan:
    """What one order's copies in a batch do, given its entry as the batch read it."""
    newest = max(c.ref.version for c in copies)
    older = [c for c in copies if c.ref.version < newest]
    current = [c for c in copies if c.ref.version == newest]
    if entry is not None and entry.newest() > newest:
        step = Step.WENT_BACKWARDS if _went_backwards(current, entry) else Step.SUPERSEDED
        return OrderPlan(step, current, older)
    needing = [c for c in current if needs_delivery(c, entry, system_id)]
    if needing:
        # One POST per version: a scheduled copy (its own key) before any re-export copy.
        send = next((c for c in needing if not c.reexport_since), needing[0])
        return OrderPlan(Step.DELIVER, current, older, send)
    if marked_since_delivery(current, entry):
        return OrderPlan(Step.ALREADY_MARKED, current, older)
    return OrderPlan(Step.MARK, current, older)


def needs_delivery(copy: InboundOrder, entry: LedgerEntry | None, system_id: str) -> bool:
    """Not known to have arrived; or a re-export copy of a version delivered before its instant."""
    if entry is None or entry.arrived() < copy.ref.version:
        return True
    if copy.reexport_since is None or entry.delivered_key == copy.key(system_id):
        return False
    # A re-export redelivers what was delivered before its instant, and nothing after it.
    return entry.delivered_ms < epoch_ms(copy.reexport_since)


def _runs(copies: list[InboundOrder]) -> set[str | None]:
    return {c.attributes.get(Attr.RUN_ID, {}).get("StringValue") for c in copies}


def _went_backwards(copies: list[InboundOrder], entry: LedgerEntry) -> bool:
    """The poll that last claimed the order fetched this version, older than the one delivered."""
    version = copies[0].ref.version
    return entry.run_id in _runs(copies) and entry.enqueued_version == version and entry.arrived() > version


def marked_since_delivery(copies: list[InboundOrder], entry: LedgerEntry | None) -> bool:
    """The version was marked after its last delivery and after any poll that fetched it since.

    A copy from the poll run that last fetched this version after its mark means Traede still
    lists it as pending: it is marked again. A replayed or duplicate copy of a marked version is
    not: marking again would swallow an edit that no poll has seen yet.
    """
    if entry is None or entry.marked_version != copies[0].ref.version:
        return False
    fetched = entry.enqueued_ms if entry.run_id in _runs(copies) else 0
    return entry.marked_ms >= max(entry.delivered_ms, fetched)
