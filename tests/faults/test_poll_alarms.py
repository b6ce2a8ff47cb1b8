"""A poll that cannot move raises its alarm metric within one poll interval."""

from __future__ import annotations

import pytest

from helpers.stack import emitted_metrics
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults


def test_a_failure_that_repeats_on_every_poll_is_counted_as_blocked(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 401 after a rotation raised PollerErrorsAlarm only after 2 of 3 periods; the contract says
    # within one poll interval.
    stack: LocalStack = make_stack(orders=2)
    assert stack.sandbox is not None
    stack.sandbox.credentials_expired = True
    capsys.readouterr()
    with pytest.raises(Exception, match="HTTP 401"):
        stack.poll()
    assert emitted_metrics(capsys.readouterr().out).get("PollBlocked") == 1


def test_a_transient_failure_is_not_counted_as_blocked(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=2)
    assert stack.sandbox is not None
    stack.sandbox.faults.error_rate = 1.0
    capsys.readouterr()
    with pytest.raises(Exception, match="HTTP 50"):
        stack.poll()
    assert emitted_metrics(capsys.readouterr().out).get("PollBlocked") == 0
