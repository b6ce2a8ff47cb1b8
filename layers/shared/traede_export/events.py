"""Reading the functions' input events: the poller's trigger and the forwarder's SQS records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.claim_check import ClaimCheck, Pointer, named_by_key
from traede_export.errors import BadEvent, InvalidOrder, LargeOrderMismatch, LargeOrderMissing
from traede_export.models import (
    Attr,
    InboundOrder,
    OrderRef,
    SqsAttributes,
    UnreadableMessage,
    parse_utc,
    version_of,
    whole_number,
)

if TYPE_CHECKING:  # the poller reads only its trigger: Powertools' data classes cost it ~11 ms at import
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

REEXPORT_FIELD = "not_exported_since"


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


@dataclass(frozen=True)
class MismatchedLargeOrder:
    """A pointer whose S3 object holds something else than the order and version the pointer names
    (replaced in the bucket): never delivered; parked with the reason and counted."""

    message_id: str
    ref: OrderRef | None  # what the message's attributes name, when they name a version
    run_id: str | None
    reason: str
    body: str  # the pointer, as queued: what the parked copy carries
    attributes: SqsAttributes


Message = InboundOrder | UnreadableMessage | UnresolvedLargeOrder | MismatchedLargeOrder  # one SQS record


def read_record(record: SQSRecord, claims: ClaimCheck) -> Message:
    """Parse one SQS record, first fetching a large order's body from S3 if it is a pointer."""
    pointer = Pointer.parse(record.body)
    if pointer is None:
        return inbound_order(record)
    try:
        body = claims.resolve(pointer)
    except LargeOrderMissing as exc:
        return _unresolved(record, str(exc), missing=True)
    except LargeOrderMismatch as exc:
        return _mismatched(record, _named_differently(record, pointer, exc.data) or str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _unresolved(record, f"could not read the large order from S3: {exc}", missing=False)
    except UnicodeDecodeError as exc:  # not an order the poller stored: park it, never crash the batch
        reason = f"large order object is not UTF-8 text ({exc.reason} at byte {exc.start})"
        receive_count = int(record.attributes.approximate_receive_count or 1)
        return UnreadableMessage(record.message_id, record.body or "", reason, receive_count, _attributes(record))
    message = inbound_order(record, body)
    if isinstance(message, InboundOrder):
        problem = _named_differently(record, pointer, body.encode("utf-8"))
        if problem:
            return _mismatched(record, problem)
    return message


def _named_differently(record: SQSRecord, pointer: Pointer, data: bytes) -> str | None:
    """Why an object that is an order is not the order its message names, or None (also when it is no order)."""
    try:
        ref = OrderRef.from_body(data.decode("utf-8"))
    except (InvalidOrder, UnicodeDecodeError):
        return None
    problem = _not_named(ref, _attributes(record), pointer.key)
    where = f"s3://{pointer.bucket}/{pointer.key}"
    return f"large order object {where} does not hold what its message names: {problem}" if problem else None


def _not_named(ref: OrderRef, attributes: SqsAttributes, key: str) -> str | None:
    """How an order read from S3 differs from the order and version its message names (in its
    attributes, and in the object's key), or None. What is absent or unreadable is not compared."""
    names = [("its message", whole_number(_text(attributes, Attr.ORDER_ID)), _version(attributes))]
    by_key = named_by_key(key)
    if by_key is not None:
        names.append(("its key", *by_key))
    for who, order_id, version in names:
        if order_id is not None and order_id != ref.order_id:
            return f"it holds order {ref.order_id}, {who} names order {order_id}; not delivered"
        if version is not None and version != ref.version:
            return f"it holds version {ref.version} of order {ref.order_id}, {who} names {version}; not delivered"
    return None


def _version(attributes: SqsAttributes) -> str | None:
    try:
        return version_of(_text(attributes, Attr.UPDATED_AT) or "")
    except ValueError:
        return None


def _text(attributes: SqsAttributes, name: str) -> str | None:
    return attributes.get(name, {}).get("StringValue") or None


def _named_ref(attributes: SqsAttributes) -> OrderRef | None:
    """The order version a message's attributes name, if they name one."""
    order_id, updated_at = whole_number(_text(attributes, Attr.ORDER_ID)), _text(attributes, Attr.UPDATED_AT)
    if order_id is None or not updated_at:
        return None
    try:
        return OrderRef.from_order({"id": order_id, "updated_at": updated_at})
    except InvalidOrder:
        return None


def _unresolved(record: SQSRecord, reason: str, missing: bool) -> UnresolvedLargeOrder:
    attributes = _attributes(record)
    return UnresolvedLargeOrder(
        record.message_id, _named_ref(attributes), _text(attributes, Attr.RUN_ID), reason, missing
    )


def _mismatched(record: SQSRecord, reason: str) -> MismatchedLargeOrder:
    attributes = _attributes(record)
    ref, run_id = _named_ref(attributes), _text(attributes, Attr.RUN_ID)
    return MismatchedLargeOrder(record.message_id, ref, run_id, reason, record.body or "", attributes)


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
