"""With the invocation's deadline armed, an answer's body reads as requests itself reads it.

The deadline adapter reads the body itself (under the watchdog that cuts it at the invocation's
end); it must read it as requests does on every answer the ERP or Traede may give: content
encodings, chunked transfer, trailers, bodiless statuses, a body delimited by the connection's
close, and `gzip, chunked` (urllib3 de-chunks when `chunked` is among the codings, RFC 9112;
http.client, read directly, only when it is exactly `chunked`).
"""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from collections.abc import Iterator

import pytest

from helpers.servers import raw_server
from traede_export.http import build_session, set_deadline

BODY = b'{"reference": "ERP-1001", "status": "stored"}'


def chunked(data: bytes, size: int = 7) -> bytes:
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def answer(status: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode() + body


GZ, ZL = gzip.compress(BODY), zlib.compress(BODY)
TRAILED = b"3;x=1\r\nabc\r\n0\r\nT: y\r\n\r\n"  # a chunk extension and a trailer
ANSWERS = {
    "identity": answer("201 Created", [("Content-Length", str(len(BODY)))], BODY),
    "gzip": answer("201 Created", [("Content-Encoding", "gzip"), ("Content-Length", str(len(GZ)))], GZ),
    "deflate": answer("201 Created", [("Content-Encoding", "deflate"), ("Content-Length", str(len(ZL)))], ZL),
    "chunked": answer("201 Created", [("Transfer-Encoding", "chunked")], chunked(BODY)),
    "chunked gzip": answer(
        "201 Created", [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")], chunked(GZ, 5)
    ),
    "chunked with a trailer": answer(
        "201 Created", [("Transfer-Encoding", "chunked")], b"3;x=1\r\nabc\r\n0\r\nT: y\r\n\r\n"
    ),
    "no content": answer("204 No Content", [("Content-Encoding", "gzip")]),
    "not modified": answer("304 Not Modified", [("Content-Length", "10")]),
    "read to close": answer("201 Created", [("Connection", "close")], BODY),
    "gzip, chunked": answer("201 Created", [("Transfer-Encoding", "gzip, chunked")], chunked(GZ)),
}


@pytest.fixture
def answering() -> Iterator[dict[str, bytes]]:
    """A server that answers each request with `answering["now"]`, then closes."""
    current: dict[str, bytes] = {}

    def answer(c: socket.socket) -> None:
        c.sendall(current["now"])
        time.sleep(0.2)

    with raw_server(answer) as url:
        current["url"] = f"{url}/orders".encode()
        yield current


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_an_armed_session_reads_the_body_requests_reads(answering: dict[str, bytes], name: str) -> None:
    answering["now"] = ANSWERS[name]
    url = answering["url"].decode()
    plain = build_session(retries=0).post(url, data=b"{}", timeout=(2.0, 2.0))
    armed = build_session(retries=0)
    set_deadline(armed, time.monotonic() + 30.0)  # as arm_deadline does in every invocation
    read = armed.post(url, data=b"{}", timeout=(2.0, 2.0))
    assert (read.status_code, read.content) == (plain.status_code, plain.content)
