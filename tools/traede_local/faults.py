"""Fault injection and the small HTTP plumbing shared by the local sandbox servers.

`Faults.pick()` decides, per request, whether a fault applies. One random draw per request
from a seeded generator, so a run with the same seed and the same request order injects the
same faults. `LocalServer` is the stdlib `ThreadingHTTPServer` wrapper both servers build on.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

ERROR = "error"
THROTTLE = "throttle"
DROP = "drop"
SLOW = "slow"
ACCEPTED_BUT_502 = "accepted_but_502"


@dataclass
class Faults:
    error_rate: float = 0.0  # answer 503/500 (alternating) without doing the work
    throttle_rate: float = 0.0  # answer 429 with `Retry-After: <retry_after>` without doing the work
    retry_after: int = 0  # whole seconds, as HTTP allows
    drop_rate: float = 0.0  # close the connection with no response, without doing the work
    slow_rate: float = 0.0  # sleep `slow_seconds` (beyond the client timeout), then 503; work NOT done
    slow_seconds: float = 1.0
    seed: int = 7

    def __post_init__(self) -> None:
        # Plain attributes, not dataclass fields, so asdict()/replace() never touch the lock.
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._errors = 0

    def _rates(self) -> list[tuple[str, float]]:
        # Rates are read live, so a test can change them on a running server.
        return [
            (ERROR, self.error_rate),
            (THROTTLE, self.throttle_rate),
            (DROP, self.drop_rate),
            (SLOW, self.slow_rate),
        ]

    def pick(self) -> str | None:
        """The fault for this request, or None. Rates are cumulative slices of one draw."""
        with self._lock:
            draw = self._rng.random()
        edge = 0.0
        for name, rate in self._rates():
            edge += rate
            if rate > 0 and draw < edge:
                return name
        return None

    def error_status(self) -> int:
        """503 and 500 alternately, so clients see both kinds of transient server error."""
        with self._lock:
            self._errors += 1
            return 503 if self._errors % 2 else 500


@dataclass
class ReceiverFaults(Faults):
    accepted_but_502_rate: float = 0.0  # store the order, then answer 502 (an ambiguous outcome)
    latency: float = 0.0  # seconds slept on every request before answering (benchmarks)

    def _rates(self) -> list[tuple[str, float]]:
        return [*super()._rates(), (ACCEPTED_BUT_502, self.accepted_but_502_rate)]


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Text(str):
    """A reply body sent as it is (text/plain), not as JSON."""


@dataclass
class Reply:
    status: int
    body: Any = None  # serialised as JSON, unless it is `Text`
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without any response


def fault_reply(fault: str, faults: Faults) -> Reply | None:
    """The reply for the transport-level faults both servers share (None: not one of them)."""
    if fault == ERROR:
        status = faults.error_status()
        return Reply(status, {"error": "injected server error"})
    if fault == THROTTLE:
        return Reply(429, {"error": "too many requests"}, {"Retry-After": str(int(faults.retry_after))})
    if fault == DROP:
        return Reply(0, drop=True)
    if fault == SLOW:
        threading.Event().wait(faults.slow_seconds)
        return Reply(503, {"error": "injected slow answer"})
    return None


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 resets connections under benchmark concurrency

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (timeout, reset) is expected under fault injection: no traceback noise.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class LocalServer:
    """A loopback HTTP server on a free port, served from a daemon thread."""

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def dispatch(self, request: Request) -> Reply:
        raise NotImplementedError

    def _base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        if self._server is None:
            server = _Server(("127.0.0.1", 0), _handler_for(self.dispatch))
            server.daemon_threads = True  # a stuck (slow-faulted) request never blocks stop()
            server.block_on_close = False
            self._server = server
            # A short poll interval keeps stop() fast (shutdown waits for the next poll).
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
            )
            self._thread.start()
        return self._base_url()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class OtherHost(LocalServer):
    """Another host on another port: answers every request 200 with `body` and records it.

    The place a redirect points to, so a test can assert that nothing (and no credential) got there.
    """

    def __init__(self, body: Any = None) -> None:
        super().__init__()
        self.body = {"ok": True} if body is None else body
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._base_url()

    def dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        return Reply(200, self.body)


def redirect_reply(status: int, location: str) -> Reply:
    return Reply(status, {"error": "moved", "location": location}, {"Location": location})


def _handler_for(dispatch: Callable[[Request], Reply]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real API; every reply sets Content-Length
        disable_nagle_algorithm = True  # headers and body go out in two writes: avoid the 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            path, _, query = self.path.partition("?")
            request = Request(self.command, path, query, dict(self.headers.items()), body)
            try:
                reply = dispatch(request)
            except Exception as exc:  # a sandbox bug must surface as a 500, not a hung client
                reply = Reply(500, {"error": f"sandbox bug: {type(exc).__name__}: {exc}"})
            if reply.drop:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            plain = isinstance(reply.body, Text)
            payload = (str(reply.body) if plain else json.dumps(reply.body)).encode("utf-8")
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if plain else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (e.g. timed out on a slow answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
