"""A POST whose answer never came may still be running in the ERP: its delivery lease is kept until it
runs out, so no other copy of the order is POSTed meanwhile (review 20, finding 2).

A real local ERP that commits each order after it has worked on it, the real TargetClient and
session, the real ledger on DynamoDB Local.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers.fakes import FakeDlq, FakeTraede, queued_copy
from helpers.ledger import dynamodb_table
from traede_export.forward import BatchOutcome, Forwarder
from traede_export.http import build_session
from traede_export.ledger import ExportLedger
from traede_export.models import InboundOrder, version_of

pytestmark = pytest.mark.faults

SYSTEM = "erp"
V1, V2 = "2026-01-05 10:00:00", "2026-01-05 10:05:00"
SLOW_COMMIT = 1.5  # the ERP's work on v1, longer than the client's read timeout


class SlowErp(BaseHTTPRequestHandler):
    """Stores every order it is sent, after working on it; v1 takes longer than the client waits."""

    stored: list[str] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        order = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if order["updated_at"] == V1:
            time.sleep(SLOW_COMMIT)
        with self.lock:
            type(self).stored.append(version_of(order["updated_at"]))
        try:
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the client gave up waiting; the order is stored all the same
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def erp_url() -> Iterator[str]:
    SlowErp.stored = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowErp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders"
    server.shutdown()


@pytest.fixture
def ledger(dynamodb_endpoint: str) -> Iterator[ExportLedger]:
    with dynamodb_table(dynamodb_endpoint, "lease") as (client, table):
        yield ExportLedger.on_dynamodb(client, table, SYSTEM)


def copy(updated_at: str, run_id: str) -> InboundOrder:
    return queued_copy(updated_at, message_id=f"m-{run_id}", run_id=run_id)


def forward(erp_url: str, ledger: ExportLedger, order: InboundOrder) -> BatchOutcome:
    from traede_export.target import TargetClient

    target = TargetClient(build_session(retries=0), erp_url, timeout=(1.0, 0.3))
    with ThreadPoolExecutor(2) as pool:
        return Forwarder(target, FakeTraede(), ledger, FakeDlq(), SYSTEM, pool).forward([order], lambda: 50.0)


def test_a_newer_version_waits_for_the_lease_of_a_post_whose_answer_never_came(
    erp_url: str, ledger: ExportLedger
) -> None:
    # Invocation A POSTs v1; the ERP is still working on it when A's read timeout gives up. A gives
    # its delivery lease back at once (end_delivery), so invocation B, holding the poll's copy of the
    # edit v2, POSTs v2 right away. The ERP stores v2, then finishes v1: it went back to older content.
    forward(erp_url, ledger, copy(V1, "run-1"))
    second = forward(erp_url, ledger, copy(V2, "run-2"))
    time.sleep(SLOW_COMMIT + 0.5)  # the ERP finishes what it was sent
    assert SlowErp.stored == [version_of(V1)], f"the ERP went back to older content: {SlowErp.stored}"
    assert second.summary.deferred == 1 and not second.results["m-run-2"].ok  # v2 comes back after the lease
