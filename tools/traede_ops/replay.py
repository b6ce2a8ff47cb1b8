"""Puts production-order JSON files (or the SQS events in `events/`) on the queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traede_export.models import Attr, InvalidOrder, OrderRef, order_attributes
from traede_export.queue import OutboundMessage, QueueWriter


@dataclass
class FileReport:
    path: str
    orders: list[int] = field(default_factory=list)
    sent: int = 0
    error: str | None = None


def order_files(paths: Iterable[str]) -> Iterator[Path]:
    """Files as given, and the `*.json` files of directories, sorted."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(path.glob("*.json"))
        else:
            yield path


def orders_in(path: Path) -> list[tuple[OrderRef, str, dict[str, Any]]]:
    """Validate a file: a bare order, a list of orders, or an SQS event whose bodies are orders."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidOrder("no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOrder(f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidOrder(f"not JSON ({exc.msg} at line {exc.lineno})") from None
    found = []
    if isinstance(data, dict) and isinstance(data.get("Records"), list):
        for record in data["Records"]:
            body = record.get("body", "") if isinstance(record, dict) else ""
            attrs = record.get("messageAttributes", {}) if isinstance(record, dict) else {}
            since = (attrs.get(Attr.REEXPORT_SINCE) or {}).get("stringValue")
            found.append((OrderRef.from_body(body), body, {"reexport_since": since}))
    elif isinstance(data, list):
        for order in data:
            found.append((OrderRef.from_order(order), json.dumps(order, separators=(",", ":")), {}))
    else:
        found.append((OrderRef.from_order(data), json.dumps(data, separators=(",", ":")), {}))
    if not found:
        raise InvalidOrder("no production orders in the file")
    return found


def replay(paths: Iterable[str], writer: QueueWriter, system_id: str, progress: Any = None) -> list[FileReport]:
    run_id = f"replay-{uuid.uuid4()}"
    reports = []
    for path in order_files(paths):
        report = FileReport(str(path))
        reports.append(report)
        try:
            orders = orders_in(path)
        except InvalidOrder as exc:
            report.error = str(exc)
        else:
            messages = [
                OutboundMessage(str(i), body, order_attributes(system_id, ref, run_id, extra.get("reexport_since")))
                for i, (ref, body, extra) in enumerate(orders)
            ]
            result = writer.send(messages)
            report.orders = [ref.order_id for ref, _, _ in orders]
            report.sent = len(result.sent)
            if result.failed:
                report.error = "; ".join(sorted(set(result.failed.values())))
        if progress is not None:
            progress()
    return reports
