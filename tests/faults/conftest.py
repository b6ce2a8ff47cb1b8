"""Fixtures shared by the fault scenarios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from traede_export import wiring

LEDGER_WRITES = ("UpdateItem", "TransactWriteItems")
Hook = Callable[..., Any]


@pytest.fixture
def hook_ledger_writes() -> Iterator[Callable[[Hook], None]]:
    """Registers a botocore `before-call` hook on the handlers' ledger writes, for this test only.

    Clients copy their session's hooks when created: register before the stack's cold starts.
    """
    events = wiring._aws_session().events
    registered: list[tuple[str, str]] = []

    def register(hook: Hook) -> None:
        for operation in LEDGER_WRITES:
            event, unique_id = f"before-call.dynamodb.{operation}", f"faults-hook-{len(registered)}"
            events.register(event, hook, unique_id=unique_id)
            registered.append((event, unique_id))

    yield register
    for event, unique_id in registered:
        events.unregister(event, unique_id=unique_id)
