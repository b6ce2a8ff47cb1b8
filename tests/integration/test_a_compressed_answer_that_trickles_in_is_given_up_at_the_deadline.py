"""A compressed answer (Content-Encoding: gzip) that trickles in is given up at the invocation's
deadline, as an uncompressed one is.

The body is read one socket read at a time (urllib3 `read1`) so the deadline is checked between
reads; but `read1(decode_content=True)` keeps reading until the decoder yields a byte, and a gzip
stream yields none until its header and its first deflate block header are in (about 60 bytes of
an ordinary JSON answer). Trickled, those bytes keep one `read1` call, and the POST, alive past
the deadline, past the Lambda's timeout and the order's delivery lease.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from traede_export.http import build_session, set_deadline

EVERY = 0.1  # seconds between bytes, each read well within any read timeout
LINES = [{"ref": f"ERP-{i:05d}", "status": "stored"} for i in range(200)]
ANSWER = gzip.compress(json.dumps({"lines": LINES}).encode())  # an ordinary JSON answer, gzipped


class GzipTrickle(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        for byte in ANSWER:
            time.sleep(EVERY)
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # the client gave up
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gzip_trickle_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GzipTrickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/orders"
    server.shutdown()


def test_a_post_whose_gzip_answer_trickles_in_gives_up_at_the_deadline(gzip_trickle_url: str) -> None:
    session = build_session(retries=3)
    set_deadline(session, time.monotonic() + 1.0)
    started = time.monotonic()
    with contextlib.suppress(Exception):  # any failure will do, in time
        session.post(gzip_trickle_url, data=b"{}", timeout=(3.05, 10.0))
    took = time.monotonic() - started
    assert took < 2.0, f"the POST outlived its deadline by {took - 1:.1f} s"
