"""An ERP (or a proxy before it) that sends an informational answer first (103 Early Hints) and its
final answer later never has that final answer read as the answer to another order's POST.

http.client skips only `100 Continue`: a 103 is handed back as the answer, with no body. requests
and `TargetClient` take it for a final answer (`HTTP 103`: a failed delivery), and urllib3 puts the
connection back in the pool as clean, its real final answer still to come. The next POST on that
connection (the next order, from the same container) then reads the first order's `201` as its
own: an order the ERP refused is recorded as delivered, and marked exported in Traede.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from traede_export.http import build_session, set_deadline
from traede_export.target import Outcome, TargetClient

FIRST = '{"id": 1, "updated_at": "2026-01-01 00:00:00"}'
SECOND = '{"id": 2, "updated_at": "2026-01-01 00:00:00"}'


def _serve(conn: socket.socket, stored: list[bytes]) -> None:
    """Order 1: 103 at once, then 201 once stored. Any other order: 400 (never stored)."""
    with conn, conn.makefile("rb") as f:
        while f.readline():
            length = 0
            while (line := f.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = f.read(length)
            if b'"id": 1' in body:
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </orders.css>; rel=preload\r\n\r\n")
                time.sleep(0.3)  # the ERP stores the order
                stored.append(body)
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
            else:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\ninvalid")


@pytest.fixture
def early_hints_erp() -> Iterator[tuple[str, list[bytes]]]:
    stored: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(conn, stored), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/orders", stored
    server.close()


def test_an_order_the_erp_refused_is_never_taken_as_delivered_after_an_early_hint(
    early_hints_erp: tuple[str, list[bytes]],
) -> None:
    url, stored = early_hints_erp
    session = build_session()
    set_deadline(session, time.monotonic() + 10)
    client = TargetClient(session, url, timeout=(1.0, 2.0))
    client.deliver(FIRST, "traede:erp:1:v")
    second = client.deliver(SECOND, "traede:erp:2:v")
    assert not any(b'"id": 2' in body for body in stored)  # the ERP never stored order 2
    assert second.outcome is not Outcome.DELIVERED, (
        f"order 2 read order 1's answer as its own: {second.reason}; it would be marked exported in Traede"
    )
