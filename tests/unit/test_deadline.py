"""Both handlers derive the invocation's deadline the same way and bound every retry wait by it."""

from __future__ import annotations

import time

from traede_export.http import DeadlineRetry, arm_deadline, build_session


def test_the_deadline_is_the_remaining_time_less_the_margin_and_bounds_every_session() -> None:
    sessions = (build_session(), build_session())
    before = time.monotonic()
    deadline = arm_deadline(sessions, remaining_ms=30_000, margin=5.0)
    assert before + 25.0 <= deadline <= time.monotonic() + 25.0
    for session in sessions:
        retries = [adapter.max_retries for adapter in session.adapters.values()]  # type: ignore[attr-defined]
        assert retries and all(isinstance(r, DeadlineRetry) and r.deadline == deadline for r in retries)
