"""An answer that trickles in is given up at the invocation's deadline, like one that never starts
(review 20, finding 3). urllib3's read timeout bounds each socket read, not the whole answer: an
ERP (or a proxy before it) that sends a byte now and then keeps a POST alive past the deadline,
past the Lambda's timeout, and, with TIME_SAFETY_MARGIN_SECONDS over LEASE_GRACE_SECONDS, past
the order's delivery lease."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from traede_export.http import build_session, set_deadline

BYTES, EVERY = 20, 0.25  # five seconds of answer, each read well within any read timeout


class Trickle(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(BYTES))
        self.end_headers()
        for _ in range(BYTES):
            time.sleep(EVERY)
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:  # the client gave up
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders"
    server.shutdown()


def test_a_post_whose_answer_trickles_in_gives_up_at_the_deadline(trickle_url: str) -> None:
    session = build_session(retries=3)
    set_deadline(session, time.monotonic() + 1.0)
    started = time.monotonic()
    with contextlib.suppress(requests.exceptions.RequestException):
        session.post(trickle_url, data=b"{}", timeout=(3.05, 10.0))
    assert time.monotonic() - started < 2.0, f"the POST outlived its deadline by {time.monotonic() - started - 1:.1f} s"
