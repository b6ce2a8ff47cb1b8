"""`traede-local run`: poll once and drain the queue, all on this machine."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from traede_local.events import load_event
from traede_local.local_stack import LocalOptions, LocalStack


@dataclass
class LocalReport:
    fetched: int
    enqueued: int
    large: int  # enqueued as a pointer to S3 (claim-check)
    delivered: int
    marked: int
    mark_calls: int
    failed: int
    forwarder_invocations: int
    redeliveries: int
    seconds: float
    received_dir: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_local(options: LocalOptions, progress: Any = None) -> LocalReport:
    started = time.monotonic()
    with LocalStack(options) as stack:
        poll = stack.poll(load_event("scheduled"))
        source = stack.event_source()
        source.drain(max_seconds=600, progress=progress)
        dlq = stack.dlq_messages()
        local_target, local_traede = options.target_url is None, options.traede_url is None
        delivered = len(stack.receiver.delivered_ids()) if local_target else source.stats.records
        marked_ids = stack.sandbox.exported(options.system_id) if local_traede else set()
        return LocalReport(
            fetched=poll["fetched"],
            enqueued=poll["enqueued"],
            large=poll["large"],
            delivered=delivered,
            marked=len(marked_ids),
            mark_calls=len(stack.sandbox.mark_calls) if local_traede else 0,
            failed=len(dlq),
            forwarder_invocations=source.stats.invocations,
            redeliveries=source.stats.records - poll["enqueued"],
            seconds=round(time.monotonic() - started, 2),
            received_dir=str(options.store_dir or Path(".")),
        )
