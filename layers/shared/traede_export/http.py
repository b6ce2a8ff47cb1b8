"""One pooled requests session per container, with urllib3 `Retry` bounded by a deadline.

The session never follows a redirect: a 3xx is handed back to the caller as it came. Followed,
a 301/302 turns the POST into a GET whose 200 looks like a delivery, and a redirect to another
host carries every header but `Authorization` (an `X-Api-Key`, Traede's app key) there.
"""

from __future__ import annotations

import socket
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from traede_export.redact import excerpt
from traede_export.watchdog import WATCHDOG

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 20.0  # a server asking for longer is left to the queue's redelivery


class DeadlineRetry(Retry):
    """`Retry` that never sleeps past a deadline and caps `Retry-After`.

    The deadline is an absolute `time.monotonic()` value set per invocation, so the
    waits always fit in the Lambda's remaining time.
    """

    deadline: float | None = None  # no attempt starts after this
    end: float | None = None  # no attempt outlasts this (the invocation's end, less a reserve)
    max_retry_after: float = MAX_RETRY_AFTER

    def new(self, **kw: Any) -> DeadlineRetry:
        fresh = super().new(**kw)
        fresh.deadline = self.deadline
        fresh.end = self.end
        fresh.max_retry_after = self.max_retry_after
        return fresh

    def get_retry_after(self, response: Any) -> float | None:
        try:
            after = super().get_retry_after(response)
        except (InvalidHeader, ValueError, OverflowError):
            # Unparseable, or a date no datetime holds (year 99999): fall back to our own backoff.
            return None
        return None if after is None else min(after, self.max_retry_after)

    def _time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> DeadlineRetry:
        fresh = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = fresh.get_backoff_time()
        if response is not None and fresh.respect_retry_after_header:
            wait = max(wait, fresh.get_retry_after(response) or 0.0)
        if wait >= self._time_left():
            # No time for another attempt: give up now, exactly as an exhausted Retry does.
            raise MaxRetryError(_pool, url or "", error or ResponseError("deadline reached"))
        if response is not None:
            # urllib3 reads a retried answer's body to the end before the next attempt, each read
            # bounded only by the read timeout: one that trickles in would start the retry past
            # the deadline. Closed unread instead; the retry opens a new connection.
            response.close()
        return fresh

    def sleep(self, response: Any = None) -> None:
        left = self._time_left()
        if response is not None and self.respect_retry_after_header:
            after = self.get_retry_after(response)
            if after:
                time.sleep(max(0.0, min(after, left)))
                return
        time.sleep(max(0.0, min(self.get_backoff_time(), left)))


class DeadlineTimeout(Timeout):
    """A (connect, read) timeout that no attempt may outlast `end` with.

    urllib3 clones the request's timeout for each attempt, retries included: each clone's total is
    the time left then, so a POST started near the deadline (or retried after a backoff) gives up
    before the invocation ends instead of outliving the Lambda (and its delivery lease).
    """

    def __init__(self, connect: float | None, read: float | None, end: float) -> None:
        super().__init__(connect=connect, read=read, total=max(0.001, end - time.monotonic()))
        self.end = end

    def clone(self) -> DeadlineTimeout:
        return DeadlineTimeout(self._connect, self._read, self.end)  # type: ignore[arg-type]


class DeadlineAdapter(HTTPAdapter):
    """Sends each request with its timeout clamped to the end that `arm_deadline` set; an
    informational answer's connection is never reused."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        retry = self.max_retries
        end = retry.end if isinstance(retry, DeadlineRetry) else None
        timeout = kwargs.get("timeout")
        if end is not None and timeout is not None and not isinstance(timeout, Timeout):
            connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
            kwargs["timeout"] = DeadlineTimeout(connect, read, end)
        response = super().send(request, **kwargs)
        if response.status_code < 200 and response.raw.connection is not None:
            # http.client skips only 100 Continue: any other 1xx (103 Early Hints) comes back as the
            # answer while the final one is still to come on the connection. Never pooled, or the
            # next request (another order's POST) would read that final answer as its own.
            response.raw.connection.close()
        if end is not None and not kwargs.get("stream"):
            _read_by(response, end)
        return response


def _read_by(response: requests.Response, end: float) -> None:
    """Read the answer's body now, as requests reads it, and cut its connection at `end`.

    A read timeout bounds each socket read, so an answer that trickles in (a byte at a time, or a
    gzip header that decodes to nothing yet) would otherwise outlive the invocation. Reading it
    here with requests keeps its de-chunking, decoding and exceptions.
    """
    sock = _socket_of(response)
    if sock is None:  # already read (or nothing to read): nothing can block
        return
    watch = WATCHDOG.watch(sock, end)
    try:
        response.content  # noqa: B018 - reads the body into response._content
    except requests.exceptions.RequestException:
        if not WATCHDOG.end(watch):
            raise
    finally:
        fired = WATCHDOG.end(watch)  # whatever the read raised: no watch outlives it
    if fired:  # a body read to the connection's close would look whole: drop it
        response.close()
        raise requests.exceptions.ReadTimeout("the answer outlasted the invocation's end", response=response)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket the body is read from: the connection's, or, once http.client let go of it (an
    answer that closes the connection), the one under the response's file."""
    sock = getattr(response.raw.connection, "sock", None)
    if sock is None:
        sock = getattr(getattr(getattr(getattr(response.raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def build_retry(total: int = 3) -> DeadlineRetry:
    return DeadlineRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        backoff_factor=0.25,
        backoff_jitter=0.25,
        backoff_max=4.0,
        status_forcelist=RETRY_STATUSES,
        # Both POSTs are safe to repeat: the target's carries an Idempotency-Key and
        # mark-as-exported is idempotent. PUT (TARGET_METHOD) is idempotent by definition.
        allowed_methods=frozenset({"GET", "POST", "PUT"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class NoRedirectSession(requests.Session):
    """A session that never follows a redirect, whatever a caller passes as `allow_redirects`."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None  # requests then neither follows nor prepares the next request


def describe_redirect(response: requests.Response) -> str:
    """'HTTP 302 redirect to https://host/path': where it points, never its query, fragment or userinfo."""
    location = response.headers.get("Location")
    if not location:
        return f"HTTP {response.status_code} redirect without a Location"
    target = urlsplit(urljoin(response.url or "", location.strip()))
    host = target.netloc.rpartition("@")[2]
    where = "".join(c if c.isprintable() else "?" for c in f"{target.scheme}://{host}{target.path}")
    return f"HTTP {response.status_code} redirect to {excerpt(where)}"  # masked before it is cut


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value, or None. Never quotes the value."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "contains a control character (CR, LF, tab, NUL or similar)"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "contains a character that is not latin-1, which HTTP headers cannot carry"
    if value != value.strip():
        return "starts or ends with whitespace, which HTTP drops"
    return None


def build_session(pool_size: int = 10, retries: int = 3) -> requests.Session:
    session = NoRedirectSession()
    adapter = DeadlineAdapter(max_retries=build_retry(retries), pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# What an attempt leaves of the invocation when it ends: enough to record its answer in the ledger.
END_RESERVE = 1.0


def arm_deadline(sessions: Iterable[requests.Session], remaining_ms: int, margin: float) -> float:
    """The invocation's deadline (a monotonic instant, `margin` seconds before Lambda's), applied to the
    sessions: no attempt starts after it, and none outlasts Lambda's end less `END_RESERVE` (a POST
    started just before the deadline may use the margin rather than be cut off and stored unanswered)."""
    now = time.monotonic()
    deadline = now + remaining_ms / 1000 - margin
    end = max(deadline, now + remaining_ms / 1000 - END_RESERVE)
    for session in sessions:
        set_deadline(session, deadline, end)
    return deadline


def set_deadline(session: requests.Session, deadline: float | None, end: float | None = None) -> None:
    """Bound every retry wait of this session by `deadline` and every attempt by `end` (monotonic
    instants; `end` defaults to `deadline`)."""
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter) and isinstance(adapter.max_retries, DeadlineRetry):
            adapter.max_retries.deadline = deadline
            adapter.max_retries.end = deadline if end is None else end


class HeaderAuth(requests.auth.AuthBase):
    """Adds headers from a provider on every request, so rotated secrets are picked up."""

    def __init__(self, provider: Callable[[], Mapping[str, str]]) -> None:
        self._provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._provider())
        return request
