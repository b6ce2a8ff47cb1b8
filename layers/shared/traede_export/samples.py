"""Test events: the bundled sample orders (`events/`) carry a marker in their body.

The marker travels with the body however it reaches the queue (`replay`, the SQS console, a
redrive). The forwarder honours it: it delivers the order to the ERP, which is what a test event
is for, under its own Idempotency-Key, and does nothing else: no lease, no ledger read or write,
no mark in Traede, and never a version of the real order with that id, so a sample can neither
mark that order nor supersede its versions.
"""

from __future__ import annotations

import json

MARKER = "_traede_export_sample"


def is_sample(body: str | None) -> bool:
    """The body is an order that carries the marker (with any value but false or null)."""
    if not body or MARKER not in body:  # the common case costs a substring search
        return False
    try:
        order = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(order, dict) and order.get(MARKER) not in (None, False)


def sample_key(key: str) -> str:
    """A test event's Idempotency-Key: never the real order's, so an ERP never dedupes one against the other."""
    return f"{key}:test-event"
