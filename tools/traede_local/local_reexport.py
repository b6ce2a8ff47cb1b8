"""`traede-local reexport`: a normal poll and drain, then a re-export, all on this machine."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from traede_export.models import utc_text
from traede_local.events import load_event
from traede_local.local_stack import LocalOptions, LocalStack

REEXPORT_MARK = ":reexport:"


def reexport_local(options: LocalOptions, since: str | None, progress: Any = None) -> dict[str, Any]:
    """Export everything once, then re-export orders not exported since `since`.

    Without `since`, the instant just after the first export is used, so every order exported
    by the first round is sent again (Traede's timestamps have whole seconds: wait one out).
    """
    started = time.monotonic()
    with LocalStack(options) as stack:
        first = stack.poll(load_event("scheduled"))
        source = stack.event_source()
        source.drain(max_seconds=600, progress=progress)
        exported_first = stack.sandbox.exported(options.system_id) if options.traede_url is None else set()
        if since is None:
            time.sleep(1.1)
            since = utc_text(datetime.now(UTC))
        event = load_event("reexport")
        event["detail"]["not_exported_since"] = since
        again = stack.poll(event)
        source.drain(max_seconds=600, progress=progress)
        keys = stack.receiver.keys_by_order() if options.target_url is None else {}
        redelivered = sorted(oid for oid, ks in keys.items() if any(REEXPORT_MARK in k for k in ks))
        dead = stack.dlq_messages()
        return {
            "since": since,
            "first_export": {
                "fetched": first["fetched"],
                "enqueued": first["enqueued"],
                "marked": len(exported_first),
            },
            "reexport": {
                "fetched": again["fetched"],
                "enqueued": again["enqueued"],
                "skipped": again["skipped"],
                "failed": again["failed"],
                "redelivered": len(redelivered),
            },
            "dead_letters": len(dead),
            "forwarder_invocations": source.stats.invocations,
            "seconds": round(time.monotonic() - started, 2),
        }
