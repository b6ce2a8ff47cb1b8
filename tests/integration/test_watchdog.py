"""The watchdog shuts a socket down at its time, in time order, and never after its watch ended."""

from __future__ import annotations

import socket
import time

from traede_export.watchdog import Watchdog


def test_a_watch_wakes_a_blocked_read_at_its_time_and_says_so() -> None:
    dog = Watchdog()
    a, b = socket.socketpair()
    with a, b:
        started = time.monotonic()
        watch = dog.watch(a, started + 0.2)
        assert a.recv(1) == b""  # the end of stream the shutdown gives
        assert 0.15 < time.monotonic() - started < 5.0
        assert dog.end(watch) is True


def test_an_ended_watch_never_fires() -> None:
    dog = Watchdog()
    a, b = socket.socketpair()
    with a, b, socket.socket() as other:
        watch = dog.watch(a, time.monotonic() + 0.1)
        assert dog.end(watch) is False
        dog.watch(other, time.monotonic())  # wakes the thread past the ended watch's time
        time.sleep(0.3)
        b.sendall(b"x")
        assert a.recv(1) == b"x"


def test_watches_fire_in_time_order_whatever_order_they_came_in() -> None:
    dog = Watchdog()
    (late, late_peer), (early, early_peer) = socket.socketpair(), socket.socketpair()
    with late, late_peer, early, early_peer:
        now = time.monotonic()
        late_watch = dog.watch(late, now + 0.6)
        early_watch = dog.watch(early, now + 0.1)
        assert early.recv(1) == b""
        assert dog.end(early_watch) is True
        assert late_watch.fired is False  # not yet
        assert late.recv(1) == b""
        assert dog.end(late_watch) is True
