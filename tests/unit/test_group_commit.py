"""GroupCommit: items ready together share one write; none waits longer than the write in flight and its own."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from traede_export.group_commit import GroupCommit


class Writes:
    """Records each call's items; the first call can be held until the test lets it go."""

    def __init__(self, hold_first: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            assert self.release.wait(5)
        return [ValueError(f"odd {i}") if i % 2 and i > 100 else i * 10 for i in items]


def wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_lone_item_is_written_at_once_alone() -> None:
    writes = Writes()
    commit: GroupCommit[int, int] = GroupCommit(writes)
    assert commit.submit(3) == 30
    assert writes.calls == [[3]]  # one call


def test_items_arriving_during_a_write_share_the_next_one() -> None:
    writes = Writes(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(writes)
    with ThreadPoolExecutor(10) as pool:
        first = pool.submit(commit.submit, 0)
        wait_until(lambda: len(writes.calls) == 1)
        rest = [pool.submit(commit.submit, i) for i in range(1, 10)]
        wait_until(lambda: commit.waiting() == 9)
        writes.release.set()
        assert first.result(5) == 0
        assert [f.result(5) for f in rest] == [i * 10 for i in range(1, 10)]
    assert writes.calls[0] == [0]
    assert sorted(writes.calls[1]) == list(range(1, 10))  # one call for the nine, not nine
    assert len(writes.calls) == 2


def test_an_item_that_failed_alone_raises_for_its_submitter_only() -> None:
    writes = Writes(hold_first=True)
    commit: GroupCommit[int, int] = GroupCommit(writes)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(commit.submit, 2)
        wait_until(lambda: len(writes.calls) == 1)
        bad, good = pool.submit(commit.submit, 101), pool.submit(commit.submit, 102)
        wait_until(lambda: commit.waiting() == 2)
        writes.release.set()
        assert first.result(5) == 20 and good.result(5) == 1020
        with pytest.raises(ValueError, match="odd 101"):
            bad.result(5)


def test_a_failed_call_fails_its_items_and_the_next_call_still_runs() -> None:
    calls: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("ledger unavailable")
        return items

    commit: GroupCommit[int, int] = GroupCommit(write)
    with pytest.raises(ConnectionError):
        commit.submit(1)
    assert commit.submit(2) == 2  # not stuck behind the failed call


def test_a_write_that_answers_the_wrong_number_of_results_fails_every_item() -> None:
    commit: GroupCommit[int, int] = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        commit.submit(1)


def test_a_writer_waits_for_the_items_still_expected_then_writes_them_together() -> None:
    writes = Writes()
    commit: GroupCommit[int, int] = GroupCommit(writes, expected=3, linger=5.0)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(commit.submit, 1)
        wait_until(lambda: commit.waiting() == 1)
        second = pool.submit(commit.submit, 2)
        wait_until(lambda: commit.waiting() == 2)
        assert writes.calls == []  # still waiting for the third
        commit.forgo()  # the third will not come (its POST failed)
        assert (first.result(5), second.result(5)) == (10, 20)
    assert writes.calls == [[1, 2]]


def test_the_wait_for_expected_items_is_bounded_by_linger() -> None:
    writes = Writes()
    commit: GroupCommit[int, int] = GroupCommit(writes, expected=10, linger=0.05)
    started = time.monotonic()
    assert commit.submit(7) == 70  # nine never come and nobody says so: written after the linger
    assert 0.04 <= time.monotonic() - started < 2
    assert writes.calls == [[7]]
