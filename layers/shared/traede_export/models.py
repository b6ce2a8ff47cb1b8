"""Production orders as this pipeline sees them: an id, a version and the untouched body."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traede_export.errors import InvalidOrder

MAX_MARK_BATCH = 10  # Traede accepts at most 10 items per mark-as-exported call
MAX_SEND_BATCH = 10  # SQS accepts at most 10 entries per SendMessageBatch
MAX_ORDER_ID = 2**63 - 1  # any real id fits; a longer one would not fit a ledger key


def whole_number(text: str | None) -> int | None:
    """A non-negative integer written in ASCII digits (an id or a size in an attribute), else None.

    `"²".isdigit()` is True but int("²") fails, and int() refuses more than 4,300 digits: neither
    may crash the reading of one odd message. Beyond a 64-bit integer is no id or size either.
    """
    if not text or len(text) > 19 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_ORDER_ID else None


def chunk[T](items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Split into lists of at most `size` items, keeping order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Attr:
    """SQS message attribute names; metadata only, the body stays Traede's JSON."""

    SYSTEM_ID = "system_id"
    ORDER_ID = "order_id"
    UPDATED_AT = "updated_at"
    RUN_ID = "run_id"
    REEXPORT = "reexport"
    REEXPORT_SINCE = "reexport_since"
    FAILURE_REASON = "failure_reason"


# An instant: ISO-8601 with `T` or Traede's `YYYY-MM-DD HH:MM:SS`, optional fraction and offset.
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def parse_utc(text: str) -> datetime:
    """Parse an instant (see `_INSTANT`); a naive one is taken as UTC. ValueError otherwise."""
    stripped = text.strip()
    if not _INSTANT.match(stripped):
        raise ValueError(f"not an ISO-8601 or 'YYYY-MM-DD HH:MM:SS' instant: {text[:40]!r}")
    try:
        parsed = datetime.fromisoformat(stripped)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # month 13, year 0, or beyond year 9999 once in UTC
        raise ValueError(f"not a valid instant: {text[:40]!r}") from None


def utc_text(instant: datetime) -> str:
    """An instant as `YYYY-MM-DDTHH:MM:SSZ` (whole seconds), the form operators type and read."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_of(updated_at: str) -> str:
    """A sortable form of `updated_at` (UTC, microseconds); ValueError when it is not an instant.

    Text that does not parse is never compared: as text, "Fri, 09 Jan" sorts before "Mon, 05 Jan".
    """
    # isoformat pads the year to 4 digits (strftime's %Y does not on glibc), so text order is time order.
    return parse_utc(updated_at).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def epoch_ms(instant: str) -> int:
    return int(parse_utc(instant).timestamp() * 1000)


@dataclass(frozen=True)
class OrderRef:
    """Identity and version of one production order."""

    order_id: int
    updated_at: str

    @property
    def version(self) -> str:
        return version_of(self.updated_at)

    @classmethod
    def from_order(cls, order: Any) -> OrderRef:
        if not isinstance(order, dict):
            raise InvalidOrder("body is not a JSON object")
        order_id = order.get("id")
        if isinstance(order_id, bool) or not isinstance(order_id, int):
            raise InvalidOrder("body has no integer 'id'")
        if not -MAX_ORDER_ID <= order_id <= MAX_ORDER_ID:
            # Its ledger key would pass DynamoDB's 2,048 bytes and fail the page's or batch's ledger call.
            raise InvalidOrder(f"order id {str(order_id)[:20]}... is beyond a 64-bit integer")
        updated_at = order.get("updated_at")
        if not isinstance(updated_at, str) or not updated_at.strip():
            raise InvalidOrder(f"order {order_id} has no 'updated_at' string")
        try:
            version_of(updated_at)
        except ValueError as exc:
            raise InvalidOrder(f"order {order_id} has an 'updated_at' that is not an instant: {exc}") from None
        return cls(order_id=order_id, updated_at=updated_at)

    @classmethod
    def from_body(cls, body: str | None) -> OrderRef:
        try:
            order = json.loads(body or "")
        except json.JSONDecodeError as exc:
            raise InvalidOrder(f"body is not JSON ({exc.msg} at position {exc.pos})") from None
        except ValueError as exc:  # an integer beyond Python's digit limit
            raise InvalidOrder(f"body is not readable JSON: {str(exc)[:100]}") from None
        except RecursionError:
            raise InvalidOrder("body is not readable JSON: nested too deeply") from None
        return cls.from_order(order)


def message_body(order: Any) -> str:
    """An export entry as the poller puts it on the queue (or in S3, when large): its JSON."""
    return json.dumps(order)


def idempotency_key(system_id: str, ref: OrderRef, reexport_since: str | None = None) -> str:
    """Stable per order version; a re-export gets its own key so the target accepts it again."""
    key = f"traede:{system_id}:{ref.order_id}:{ref.version}"
    return f"{key}:reexport:{version_of(reexport_since)}" if reexport_since else key


SqsAttributes = dict[str, dict[str, str]]


@dataclass(frozen=True)
class InboundOrder:
    """One SQS record that parsed as a production order."""

    message_id: str
    ref: OrderRef
    body: str
    reexport_since: str | None
    receive_count: int
    attributes: SqsAttributes = field(default_factory=dict, compare=False)  # kept when parked in the DLQ
    queued_body: str | None = field(default=None, compare=False)  # a large order's S3 pointer, as queued

    def key(self, system_id: str) -> str:
        return idempotency_key(system_id, self.ref, self.reexport_since)

    @property
    def message_body(self) -> str:
        """The body as it came off the queue (a pointer for a large order): what a parked copy carries."""
        return self.queued_body if self.queued_body is not None else self.body


@dataclass(frozen=True)
class UnreadableMessage:
    """One SQS record that is not a production order: parked with the reason, never delivered."""

    message_id: str
    body: str
    reason: str
    receive_count: int
    attributes: SqsAttributes = field(default_factory=dict)


def string_attributes(values: dict[str, str]) -> SqsAttributes:
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}


def order_attributes(
    system_id: str, ref: OrderRef, run_id: str, reexport_since: str | None
) -> dict[str, dict[str, str]]:
    return string_attributes(
        {
            Attr.SYSTEM_ID: system_id,
            Attr.ORDER_ID: str(ref.order_id),
            Attr.UPDATED_AT: ref.updated_at,
            Attr.RUN_ID: run_id,
            Attr.REEXPORT: "true" if reexport_since else "false",
            Attr.REEXPORT_SINCE: reexport_since or "",
        }
    )
