"""A retried answer (a 503, 429 or 502 that urllib3's Retry answers with another attempt) that
trickles in is given up at the invocation's deadline, like the final answer is.

`DeadlineAdapter` bounds the body of the answer `send` hands back (`_read_by`: a timer cuts the
connection at the end). The body of an answer that urllib3 retries never gets there: Retry decides
to retry while there is time left, then `drain_conn()` reads that body to its end with only the
per-read timeout, and the next attempt starts after the drain, past the deadline. An ERP (or a
proxy before it) that answers 503 a byte at a time keeps the POST alive past the Lambda's timeout,
and the retried POST of the order leaves after the deadline, when its delivery lease may be gone.
"""

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


class BusyThenOk(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts: list[float] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append(time.monotonic())
        if len(type(self).posts) > 1:
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        self.send_response(503)
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
def busy_url() -> Iterator[str]:
    BusyThenOk.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), BusyThenOk)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders"
    server.shutdown()


def test_a_post_whose_retried_answer_trickles_in_gives_up_at_the_deadline(busy_url: str) -> None:
    session = build_session(retries=3)
    deadline = time.monotonic() + 1.0
    set_deadline(session, deadline)
    started = time.monotonic()
    with contextlib.suppress(requests.exceptions.RequestException):
        session.post(busy_url, data=b"{}", timeout=(3.05, 10.0))
    took = time.monotonic() - started
    late = [round(at - deadline, 1) for at in BusyThenOk.posts if at > deadline]
    assert took < 2.0 and not late, (
        f"the POST outlived its deadline by {took - 1:.1f} s; POSTs started past the deadline by {late} s"
    )
