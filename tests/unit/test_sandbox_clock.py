"""The sandbox keeps Traede's time by the clock it is given, so tests step past whole seconds without sleeping.

Requests go straight to `dispatch`: no server, no socket.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from traede_export.models import utc_text
from traede_local.faults import Request
from traede_local.sandbox import EXPORT_PATH, MARK_PATH, ManualClock, TraedeSandbox
from traede_local.seed import seed_orders

AUTH = {"Authorization": "Bearer tok", "X-Traede-App-Key": "app"}
START = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def exported_since(sandbox: TraedeSandbox, since: datetime) -> set[int]:
    query = urlencode({"system_id": "erp", "not_exported_since": utc_text(since), "limit": "60"})
    reply = sandbox.dispatch(Request("GET", EXPORT_PATH, query, AUTH, b""))
    assert reply.status == 200, reply.body
    return {o["id"] for o in reply.body["production_orders"]}


def test_marks_and_edits_are_stamped_by_the_sandboxs_clock() -> None:
    clock = ManualClock(START)
    sandbox = TraedeSandbox(seed_orders(4), access_token="tok", app_key="app", clock=clock)
    order = sandbox.pending("erp")[0]
    body = json.dumps({"production_orders": [{"production_order_id": order, "system_id": "erp"}]}).encode()
    assert sandbox.dispatch(Request("POST", MARK_PATH, "", AUTH, body)).status == 200

    assert order not in exported_since(sandbox, START)  # marked within START's second, not before it
    assert order in exported_since(sandbox, clock.advance(1))  # one second on, without waiting for it
    assert sandbox.edit(order) == "2026-11-01 12:00:01"
