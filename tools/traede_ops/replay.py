"""Puts production-order JSON files (or the SQS events in `events/`) on the queue.

A file may hold a bare order, a list of orders, or an SQS event (`{"Records": [...]}`) whose
bodies are orders. Every file is validated as a whole before any of it is sent: a file with one
bad order sends nothing, and the command says which item was bad. Other files still go.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from traede_export.claim_check import (
    MAX_THRESHOLD_BYTES,
    SIZE_ATTRIBUTE,
    ClaimCheck,
    Pointer,
    payload_size,
)
from traede_export.errors import InvalidOrder
from traede_export.models import Attr, OrderRef, order_attributes, whole_number
from traede_export.queue import OutboundMessage, QueueWriter
from traede_export.samples import is_sample


@dataclass
class FileReport:
    path: str
    orders: list[int] = field(default_factory=list)  # ids found in the file, in file order
    sent: list[int] = field(default_factory=list)  # ids SQS accepted
    failed: dict[str, str] = field(default_factory=dict)  # order id -> why SQS did not take it
    error: str | None = None  # why the file as a whole was not sent

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class ParsedOrder:
    ref: OrderRef
    body: str  # the order, or a large order's S3 pointer as it was queued
    reexport_since: str | None = None
    payload_size: int | None = None  # set when `body` is a pointer: the order's size in bytes


def order_files(paths: Iterable[str]) -> Iterator[Path]:
    """Files as given, and the `*.json` files of directories, sorted.

    A directory without JSON files is yielded itself, so it is reported rather than skipped.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            yield from found or [path]
        else:
            yield path


def _compact(order: Any) -> str:
    return json.dumps(order, separators=(",", ":"), ensure_ascii=False)


def _record(index: int, record: Any) -> ParsedOrder:
    if not isinstance(record, dict):
        raise InvalidOrder(f"record {index}: not a JSON object")
    body = record.get("body")
    if not isinstance(body, str):
        raise InvalidOrder(f"record {index}: no string 'body'")
    raw_attrs = record.get("messageAttributes")
    attrs = raw_attrs if isinstance(raw_attrs, dict) else {}

    def text(name: str) -> str | None:
        value = attrs.get(name)
        found = value.get("stringValue") if isinstance(value, dict) else None
        return found if isinstance(found, str) and found else None

    since = text(Attr.REEXPORT_SINCE)
    if Pointer.parse(body) is not None:
        # A large order's pointer stays a pointer: its version comes from the record's attributes.
        order_id, updated_at = whole_number(text(Attr.ORDER_ID)), text(Attr.UPDATED_AT)
        size = payload_size({SIZE_ATTRIBUTE: {"StringValue": text(SIZE_ATTRIBUTE) or ""}})
        if order_id is None or not updated_at or not size:
            needed = f"{Attr.ORDER_ID}, {Attr.UPDATED_AT} and {SIZE_ATTRIBUTE}"
            raise InvalidOrder(f"record {index}: an S3 pointer needs the attributes {needed}")
        try:
            ref = OrderRef.from_order({"id": order_id, "updated_at": updated_at})
        except InvalidOrder as exc:
            raise InvalidOrder(f"record {index}: {exc}") from None
        return ParsedOrder(ref, body, since, size)
    try:
        ref = OrderRef.from_body(body)
    except InvalidOrder as exc:
        raise InvalidOrder(f"record {index}: {exc}") from None
    return ParsedOrder(ref, body, since)


def orders_in(path: Path) -> list[ParsedOrder]:
    """Validate a file: a bare order, a list of orders, or an SQS event whose bodies are orders."""
    if path.is_dir():
        raise InvalidOrder("directory has no *.json files")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidOrder("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOrder(f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidOrder(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    found: list[ParsedOrder] = []
    if isinstance(data, dict) and "Records" in data:
        if not isinstance(data["Records"], list):
            raise InvalidOrder("'Records' is not a list")
        found = [_record(i, r) for i, r in enumerate(data["Records"])]
    elif isinstance(data, list):
        for i, order in enumerate(data):
            try:
                found.append(ParsedOrder(OrderRef.from_order(order), _compact(order)))
            except InvalidOrder as exc:
                raise InvalidOrder(f"item {i}: {exc}") from None
    else:
        try:
            found.append(ParsedOrder(OrderRef.from_order(data), _compact(data)))
        except InvalidOrder as exc:
            raise InvalidOrder(f"not a production order: {exc}") from None
    if not found:
        raise InvalidOrder("no production orders in the file")
    return found


def new_run_id() -> str:
    return f"replay-{uuid.uuid4()}"


def replay(
    paths: Iterable[str],
    writer: QueueWriter | None,
    system_id: str,
    progress: Callable[..., Any] | None = None,
    run_id: str | None = None,
    claims: ClaimCheck | None = None,
    samples_allowed: bool = True,
) -> list[FileReport]:
    """Validate and send each file; `writer=None` validates only (a dry run).

    `claims`: the stack's large-order bucket; an order over its threshold is stored there and
    sent as a pointer, as the poller does. Without it such an order fails with the reason.
    `samples_allowed=False`: a file holding a test event (samples.py) is refused as a whole.
    """
    run_id = run_id or new_run_id()
    reports = []
    for done, path in enumerate(order_files(paths), start=1):
        report = FileReport(str(path))
        reports.append(report)
        try:
            orders = orders_in(path)
        except InvalidOrder as exc:
            report.error = str(exc)
        else:
            report.orders = [o.ref.order_id for o in orders]
            if not samples_allowed and any(is_sample(o.body) for o in orders):
                report.error = (
                    "holds a test event (a bundled sample, order 4711) and the queue is a deployed stack's:"
                    " the ERP would receive a fictional order; add --allow-samples if that is what you want"
                )
            elif writer is not None:
                _send(writer, system_id, run_id, orders, report, claims)
        if progress is not None:
            progress(done)
    return reports


def _send(
    writer: QueueWriter,
    system_id: str,
    run_id: str,
    orders: list[ParsedOrder],
    report: FileReport,
    claims: ClaimCheck | None,
) -> None:
    messages = []
    too_large: dict[str, str] = {}
    for i, o in enumerate(orders):
        body, attributes = o.body, order_attributes(system_id, o.ref, run_id, o.reexport_since)
        if o.payload_size is not None:
            attributes[SIZE_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(o.payload_size)}
        elif claims is not None and claims.is_large(body):
            body, attributes = claims.offload_order(o.ref, body, attributes)
        elif claims is None and len(body.encode("utf-8")) > MAX_THRESHOLD_BYTES:
            # Inline, it would break the bound that keeps a forwarder batch within Lambda's 6 MB.
            too_large[str(o.ref.order_id)] = (
                f"over {MAX_THRESHOLD_BYTES} bytes: goes through the large-order bucket (--bucket or --stack)"
            )
            continue
        messages.append(OutboundMessage(str(i), body, attributes))
    result = writer.send(messages)
    sent = set(result.sent)
    report.sent = [o.ref.order_id for i, o in enumerate(orders) if str(i) in sent]
    report.failed = {str(orders[int(i)].ref.order_id): reason for i, reason in sorted(result.failed.items())}
    report.failed.update(too_large)
