"""Reading the functions' input events: the poller's trigger and the forwarder's SQS records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from traede_export.models import Attr, InboundOrder, OrderRef, parse_utc

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


def inbound_order(record: SQSRecord) -> InboundOrder:
    """Parse one SQS record; raises `InvalidOrder` when the body is not a production order."""
    ref = OrderRef.from_body(record.body)
    attribute = record.message_attributes[Attr.REEXPORT_SINCE]
    since = attribute.string_value if attribute is not None else None
    return InboundOrder(
        message_id=record.message_id,
        ref=ref,
        body=record.body,
        reexport_since=since or None,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )
