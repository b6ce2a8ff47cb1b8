"""One thread per process that shuts a socket down at its time, unless the watch is ended first.

`http` reads each answer's body under a watch that ends at the invocation's end. A thread of its
own per answer (`threading.Timer`) cost ~150 us to start; this one is started once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time


class Watch:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ended = False  # ended by its reader before its time
        self.fired = False  # the socket was shut down at its time


class Watchdog:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()  # ties in time never compare two watches
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, at: float) -> Watch:
        """Shut `sock` down at `at` (a `time.monotonic()` value) unless `end` comes first."""
        w = Watch(sock)
        with self._changed:
            heapq.heappush(self._due, (at, next(self._order), w))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            self._changed.notify()
        return w

    def end(self, w: Watch) -> bool:
        """End the watch; true if it had already fired. Under the lock: never fires after this."""
        with self._changed:
            w.ended = True
            return w.fired

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                while self._due and (self._due[0][2].ended or self._due[0][0] <= now):
                    _, _, w = heapq.heappop(self._due)
                    if not w.ended:
                        w.fired = True
                        with contextlib.suppress(OSError):
                            # socket.socket's own shutdown, also for TLS: wakes the blocked read with
                            # an end of stream and leaves the TLS object alone to fail that read.
                            socket.socket.shutdown(w.sock, socket.SHUT_RDWR)
                self._changed.wait(self._due[0][0] - now if self._due else None)


WATCHDOG = Watchdog()
