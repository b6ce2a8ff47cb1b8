"""Local servers that answer as a slow, odd or broken ERP (or Traede) does, for the HTTP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port: its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """Reads each request whole, then lets `answer` write raw bytes (any framing, broken or not) on
    the connection, which closes after it: its base URL."""
    server = socket.create_server(("127.0.0.1", 0))

    def handle(c: socket.socket) -> None:
        with c:
            reader, length = c.makefile("rb"), 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            answer(c)

    def accept() -> None:
        while True:
            try:
                c, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def trickle(out: BufferedIOBase, data: bytes, every: float) -> None:
    """Write `data` a byte at a time, `every` seconds apart, until done or the client gives up."""
    for byte in data:
        time.sleep(every)
        try:
            out.write(bytes([byte]))
            out.flush()
        except OSError:
            return
