"""An answer that trickles in is given up at the invocation's deadline, like one that never starts.

urllib3's read timeout bounds each socket read, not the whole answer: an ERP (or a proxy before it)
that sends a byte now and then keeps a POST alive past the deadline, past the Lambda's timeout and,
with TIME_SAFETY_MARGIN_SECONDS over LEASE_GRACE_SECONDS, past the order's delivery lease. So it
goes for a gzip answer (a gzip stream decodes to nothing until its first ~60 bytes are in), and for
an answer that urllib3 retries: it reads a retried body to its end before the next attempt, which
then starts past the deadline, when the order's delivery lease may be gone.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import time
from collections.abc import Iterator

import pytest
import requests

from helpers.servers import QuietHandler, http_server, trickle
from traede_export.http import build_session, set_deadline

PLAIN = b"x" * 20  # five seconds of answer at EVERY, each read well within any read timeout
EVERY = 0.25
LINES = [{"ref": f"ERP-{i:05d}", "status": "stored"} for i in range(200)]
GZIPPED = gzip.compress(json.dumps({"lines": LINES}).encode())  # an ordinary JSON answer, gzipped


class Trickle(QuietHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(PLAIN)))
        self.end_headers()
        trickle(self.wfile, PLAIN, EVERY)


class GzipTrickle(QuietHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(GZIPPED)))
        self.end_headers()
        trickle(self.wfile, GZIPPED, 0.1)


class BusyThenOk(QuietHandler):
    """A 503 that trickles in, then, for the retry, a 201."""

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
        self.send_header("Content-Length", str(len(PLAIN)))
        self.end_headers()
        trickle(self.wfile, PLAIN, EVERY)


@pytest.fixture
def busy_url() -> Iterator[str]:
    BusyThenOk.posts = []
    with http_server(BusyThenOk) as url:
        yield url


def post_with_a_deadline_in(url: str, seconds: float) -> float:
    """POST as the functions do, the deadline `seconds` away, whatever the outcome: the seconds it took."""
    session = build_session(retries=3)
    set_deadline(session, time.monotonic() + seconds)
    started = time.monotonic()
    with contextlib.suppress(requests.exceptions.RequestException):
        session.post(url, data=b"{}", timeout=(3.05, 10.0))
    return time.monotonic() - started


@pytest.mark.parametrize("handler", [Trickle, GzipTrickle], ids=["plain", "gzip"])
def test_a_post_whose_answer_trickles_in_gives_up_at_the_deadline(handler: type[QuietHandler]) -> None:
    with http_server(handler) as url:
        took = post_with_a_deadline_in(url, 1.0)
    assert took < 2.0, f"the POST outlived its deadline by {took - 1:.1f} s"


def test_a_post_whose_retried_answer_trickles_in_gives_up_at_the_deadline(busy_url: str) -> None:
    deadline = time.monotonic() + 1.0
    took = post_with_a_deadline_in(busy_url, 1.0)
    late = [round(at - deadline, 1) for at in BusyThenOk.posts if at > deadline]
    assert took < 2.0 and not late, (
        f"the POST outlived its deadline by {took - 1:.1f} s; POSTs started past the deadline by {late} s"
    )
