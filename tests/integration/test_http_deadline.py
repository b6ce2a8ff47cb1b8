"""No HTTP attempt outlives the invocation's deadline: a slow server is given up on in time.

A real local server that answers after a delay; the session as the functions build it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from helpers.servers import QuietHandler, http_server
from traede_export.http import build_session, set_deadline


class Slow(QuietHandler):
    delay = 3.0
    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        time.sleep(self.delay)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def slow_url() -> Iterator[str]:
    Slow.requests = 0
    with http_server(Slow) as url:
        yield url


def test_a_post_started_near_the_deadline_gives_up_at_the_deadline(slow_url: str) -> None:
    # Connect 3.05 s plus read 10 s outlived a 10 s margin; HTTP_READ_TIMEOUT may be 300 s.
    session = build_session(retries=3)
    set_deadline(session, time.monotonic() + 1.0)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.RequestException):
        session.post(slow_url, data=b"{}", timeout=(3.05, 10.0))
    assert time.monotonic() - started < 2.0
    assert Slow.requests == 1  # no retry started past the deadline


def test_without_a_deadline_the_configured_timeout_holds(slow_url: str) -> None:
    session = build_session(retries=0)
    Slow.delay = 0.2
    try:
        assert session.post(slow_url, data=b"{}", timeout=(3.05, 10.0)).status_code == 201
    finally:
        Slow.delay = 3.0
