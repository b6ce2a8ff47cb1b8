"""A busy answer whose Retry-After is a date that cannot be a real instant (year 99999) is an
ordinary busy answer: the call fails for this order alone and the queue brings it back.

urllib3 parses an HTTP-date Retry-After with `email.utils`; a year beyond 9999 makes
`calendar.timegm` raise ValueError, not urllib3's InvalidHeader, and `DeadlineRetry.get_retry_after`
catches only InvalidHeader. The ValueError leaves `session.request`; `TargetClient.deliver` takes
every ValueError for a setup problem (ConfigurationError: "check TARGET_URL ...") and fails the whole
invocation, and `TraedeClient` lets it out raw where it expects a TraedeError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from traede_export.errors import TraedeError
from traede_export.http import build_session
from traede_export.target import Outcome, TargetClient
from traede_export.traede import TraedeClient

ODD_RETRY_AFTER = "Mon, 01 Jan 99999 00:00:00 GMT"
BODY = '{"id": 7, "updated_at": "2026-01-01 00:00:00"}'


class Busy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _busy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(503)
        self.send_header("Retry-After", ODD_RETRY_AFTER)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"busy")

    do_POST = do_GET = _busy

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_busy_erp_with_an_out_of_range_retry_after_fails_the_order_alone(busy_url: str) -> None:
    client = TargetClient(build_session(retries=1), busy_url + "/orders", timeout=(1.0, 1.0))
    result = client.deliver(BODY, "key-1")  # raises ConfigurationError today
    assert result.outcome is Outcome.FAILED


def test_a_busy_traede_with_an_out_of_range_retry_after_is_a_traede_error(busy_url: str) -> None:
    client = TraedeClient(build_session(retries=1), busy_url, "local-erp", timeout=(1.0, 1.0))
    with pytest.raises(TraedeError):
        client.mark_as_exported([(7, "note")])  # raises a bare ValueError today
