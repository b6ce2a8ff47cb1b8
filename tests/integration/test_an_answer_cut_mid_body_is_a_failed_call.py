"""An answer whose body is cut short (the connection closes before Content-Length, or stalls past
the read timeout, or its gzip is broken) is a failed call of the client that made it, as requests
reports it: a `TraedeError` for Traede's export and mark-as-exported, a FAILED delivery for the ERP.

With the invocation's deadline armed (every Lambda invocation arms it), the adapter reads the body
itself with urllib3's `read1`, and urllib3's own exceptions (ProtocolError, ReadTimeoutError,
DecodeError) come out of `session.request` unwrapped: no `requests.RequestException`. The poll
then dies without its metrics instead of failing with a reason, and a mark whose answer is cut
fails the whole forwarder invocation (Marking re-raises what is not a TraedeError) instead of
that chunk's marks.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from helpers.fakes import FakeDlq, FakeTarget, queued_copy
from helpers.ledger import SYSTEM, memory_ledger
from helpers.servers import raw_server
from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.forward import Forwarder
from traede_export.http import build_session, set_deadline
from traede_export.target import Outcome, TargetClient
from traede_export.traede import TraedeClient

Answer = Callable[[socket.socket], None]


def cut(c: socket.socket) -> None:  # 3 bytes of 100, then the connection closes
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"p')


def stalled(c: socket.socket) -> None:  # 3 bytes of 100, then nothing for longer than the read timeout
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"p')
    time.sleep(2.0)


def bad_gzip(c: socket.socket) -> None:
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello")


ANSWERS = {"cut": cut, "stalled": stalled, "bad_gzip": bad_gzip}


@pytest.fixture(params=sorted(ANSWERS))
def broken_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with raw_server(ANSWERS[request.param]) as url:
        yield url


def armed_session() -> requests.Session:
    session = build_session(retries=0)
    set_deadline(session, time.monotonic() + 30.0)  # as arm_deadline does in every invocation
    return session


def test_a_cut_export_page_is_a_traede_error(broken_url: str) -> None:
    client = TraedeClient(armed_session(), broken_url, "erp", timeout=(1.0, 1.0))
    with pytest.raises(TraedeError):
        client.export_page(ExportOptions(), 0)


def test_a_cut_mark_answer_is_a_traede_error(broken_url: str) -> None:
    client = TraedeClient(armed_session(), broken_url, "erp", timeout=(1.0, 1.0))
    with pytest.raises(TraedeError):
        client.mark_as_exported([(1, "note")])


def test_a_cut_erp_answer_is_a_failed_delivery(broken_url: str) -> None:
    target = TargetClient(armed_session(), broken_url + "/orders", timeout=(1.0, 1.0))
    result = target.deliver('{"id": 1}', "traede:erp:1:2026-01-05T10:00:00Z")
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("no answer from receiving system"), result.reason


def test_a_cut_mark_answer_fails_its_marks_not_the_invocation(broken_url: str) -> None:
    # One batch: the ERP accepts the order, Traede's answer to its mark is cut. The mark fails
    # (its record is taken back, the copy comes back to mark again); the invocation does not.
    copy = queued_copy("2026-01-05T10:00:00Z")
    traede = TraedeClient(armed_session(), broken_url, SYSTEM, timeout=(1.0, 1.0))
    with ThreadPoolExecutor(2) as pool:
        outcome = Forwarder(FakeTarget(), traede, memory_ledger(), FakeDlq(), SYSTEM, pool).forward(
            [copy], lambda: 20.0
        )
    assert not outcome.results["m-1"].ok
    assert outcome.summary.mark_failures == 1
