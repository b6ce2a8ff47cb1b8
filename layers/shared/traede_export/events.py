"""Reading the functions' input events: the poller's trigger and the forwarder's SQS records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from traede_export.models import (
    Attr,
    InboundOrder,
    InvalidOrder,
    OrderRef,
    SqsAttributes,
    UnreadableMessage,
    parse_utc,
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


def inbound_order(record: SQSRecord) -> InboundOrder | UnreadableMessage:
    """Parse one SQS record; what is not a production order comes back with the reason."""
    attributes = _attributes(record)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    since = attributes.get(Attr.REEXPORT_SINCE, {}).get("StringValue") or None
    try:
        ref = OrderRef.from_body(record.body)
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
        body=record.body,
        reexport_since=since,
        receive_count=receive_count,
        attributes=attributes,
    )
