"""Reading the functions' input events: the poller's trigger and the forwarder's SQS records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.claim_check import ClaimCheck, LargeOrderMissing, Pointer
from traede_export.models import (
    Attr,
    InboundOrder,
    InvalidOrder,
    OrderRef,
    SqsAttributes,
    UnreadableMessage,
    parse_utc,
    whole_number,
)

if TYPE_CHECKING:  # the poller reads only its trigger: Powertools' data classes cost it ~11 ms at import
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

REEXPORT_FIELD = "not_exported_since"


class BadEvent(ValueError):
    """The poller was invoked with input it cannot act on."""


def reexport_since(event: Any) -> datetime | None:
    """`not_exported_since` at the top level or under `detail` (EventBridge), else None."""
    if not isinstance(event, dict):
        return None
    detail = event.get("detail")
    raw = event.get(REEXPORT_FIELD)
    if raw is None and isinstance(detail, dict):
        raw = detail.get(REEXPORT_FIELD)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadEvent(f"{REEXPORT_FIELD} must be an ISO-8601 UTC string, got {raw!r}")
    try:
        since = parse_utc(raw)
    except ValueError:
        raise BadEvent(f"{REEXPORT_FIELD} is not an ISO-8601 datetime: {raw!r}") from None
    if since > datetime.now(UTC):
        raise BadEvent(f"{REEXPORT_FIELD} is in the future: {raw!r}")
    return since


def _attributes(record: SQSRecord) -> SqsAttributes:
    """The record's string attributes in SendMessage's shape, so a parked copy keeps them."""
    raw = record.raw_event.get("messageAttributes") or {}
    return {
        name: {"DataType": str(a.get("dataType") or "String"), "StringValue": str(a["stringValue"])}
        for name, a in raw.items()
        if isinstance(a, dict) and a.get("stringValue") is not None
    }


@dataclass(frozen=True)
class UnresolvedLargeOrder:
    """A pointer whose S3 object could not be read: the record fails and comes back; nothing is marked."""

    message_id: str
    ref: OrderRef | None  # from the message's attributes, when they name a version
    run_id: str | None
    reason: str
    missing: bool  # the object is gone (LargeOrderMissing), rather than S3 failing for now


Message = InboundOrder | UnreadableMessage | UnresolvedLargeOrder  # what one SQS record reads as


def read_record(record: SQSRecord, claims: ClaimCheck) -> Message:
    """Parse one SQS record, first fetching a large order's body from S3 if it is a pointer."""
    pointer = Pointer.parse(record.body)
    if pointer is None:
        return inbound_order(record)
    try:
        body = claims.resolve(pointer)
    except LargeOrderMissing as exc:
        return _unresolved(record, str(exc), missing=True)
    except (ClientError, BotoCoreError) as exc:
        return _unresolved(record, f"could not read the large order from S3: {exc}", missing=False)
    except UnicodeDecodeError as exc:  # not an order the poller stored: park it, never crash the batch
        reason = f"large order object is not UTF-8 text ({exc.reason} at byte {exc.start})"
        receive_count = int(record.attributes.approximate_receive_count or 1)
        return UnreadableMessage(record.message_id, record.body or "", reason, receive_count, _attributes(record))
    return inbound_order(record, body)


def _unresolved(record: SQSRecord, reason: str, missing: bool) -> UnresolvedLargeOrder:
    attributes = _attributes(record)

    def text(name: str) -> str | None:
        return attributes.get(name, {}).get("StringValue") or None

    ref: OrderRef | None = None
    order_id, updated_at = whole_number(text(Attr.ORDER_ID)), text(Attr.UPDATED_AT)
    if order_id is not None and updated_at:
        try:
            ref = OrderRef.from_order({"id": order_id, "updated_at": updated_at})
        except InvalidOrder:
            ref = None
    return UnresolvedLargeOrder(record.message_id, ref, text(Attr.RUN_ID), reason, missing)


def inbound_order(record: SQSRecord, resolved_body: str | None = None) -> InboundOrder | UnreadableMessage:
    """Parse one SQS record; what is not a production order comes back with the reason.

    `resolved_body`: a large order's body read from S3; the record's own body (its pointer) is
    kept as the queued body, so a parked copy stays within SQS's size limit.
    """
    attributes = _attributes(record)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    since = attributes.get(Attr.REEXPORT_SINCE, {}).get("StringValue") or None
    body = record.body if resolved_body is None else resolved_body
    try:
        ref = OrderRef.from_body(body)
        if since is not None:
            try:
                parse_utc(since)
            except ValueError as exc:
                raise InvalidOrder(f"attribute {Attr.REEXPORT_SINCE} is not an instant: {exc}") from None
    except InvalidOrder as exc:
        return UnreadableMessage(record.message_id, record.body or "", str(exc), receive_count, attributes)
    return InboundOrder(
        message_id=record.message_id,
        ref=ref,
        body=body,
        reexport_since=since,
        receive_count=receive_count,
        attributes=attributes,
        queued_body=None if resolved_body is None else record.body,
    )
