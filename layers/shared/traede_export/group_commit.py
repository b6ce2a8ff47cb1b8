"""Group commit: items that become ready together share one write.

The forwarder records each delivery as soon as its POST is accepted, from the POST's own
thread. Ten POSTs that finish together would make ten ledger calls, each costing the
container CPU and DynamoDB a round trip, and one write per order would not shorten anyone's
wait. Here a thread that finds no write in flight writes what is pending, its own item
included; items that arrive meanwhile go together in the next call. Before writing, it waits
for the items still expected (`expected`, less those forgone), at most `linger` seconds, as
PostgreSQL's commit_delay does: POSTs answered within a few milliseconds of each other then
share one call. No item waits longer than `linger`, the write in flight and its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import cast


class _Slot[T, R]:
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit[T, R]:
    """`submit(item)` returns what `write` answered for it; `write` takes the items of one call
    and answers one result per item, or an exception instance for an item that failed alone."""

    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R | BaseException]],
        expected: int = 0,
        linger: float = 0.0,
        last: Callable[[list[T]], Sequence[R | BaseException]] | None = None,
    ) -> None:
        """`last`, if given, writes instead of `write` the one call made once every expected item has come."""
        self._write = write
        self._last = last
        self._cond = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._writing = False
        self._expected = expected  # items still to be submitted or forgone
        self._linger = linger

    def forgo(self) -> None:
        """One expected item will not come: nobody waits for it."""
        with self._cond:
            self._expected -= 1
            self._cond.notify_all()

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        batch: list[_Slot[T, R]] = []
        with self._cond:
            self._pending.append(slot)
            self._expected -= 1
            self._cond.notify_all()
            while self._writing and not slot.done:
                self._cond.wait()
            if not slot.done:  # nobody is writing: this thread writes what is pending, its own item included
                self._writing = True
                deadline = time.monotonic() + self._linger
                while self._expected > 0 and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                batch, self._pending = self._pending, []
                write = self._write
                if self._expected <= 0 and self._last is not None:
                    write, self._last = self._last, None
        if batch:
            try:
                self._run(batch, write)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return cast(R, slot.result)  # set by _run whenever error is None

    def waiting(self) -> int:
        """Items queued behind the write in flight."""
        with self._cond:
            return len(self._pending)

    def _run(self, batch: list[_Slot[T, R]], write: Callable[[list[T]], Sequence[R | BaseException]]) -> None:
        try:
            results = list(write([s.item for s in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"write answered {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # every item of the call shares its failure; the caller decides
            results = [exc] * len(batch)
        with self._cond:
            for s, r in zip(batch, results, strict=True):
                if isinstance(r, BaseException):
                    s.error = r
                else:
                    s.result = r
                s.done = True
