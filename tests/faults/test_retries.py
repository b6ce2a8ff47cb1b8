"""HTTP retries against the real local servers: what is retried, how often, and what fails fast."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from urllib3.response import HTTPResponse

from traede_export.http import MAX_RETRY_AFTER, build_retry, build_session, set_deadline
from traede_export.target import Outcome, TargetClient
from traede_local.faults import ReceiverFaults
from traede_local.receiver import ReceivingSystem

pytestmark = pytest.mark.faults
BODY = '{"id": 7, "updated_at": "2026-01-01 00:00:00"}'
ATTEMPTS = 4  # the first try and three retries


@pytest.fixture
def receiver() -> Iterator[ReceivingSystem]:
    with ReceivingSystem() as server:
        yield server


def client(receiver: ReceivingSystem, conflict_is_delivered: bool = False) -> TargetClient:
    return TargetClient(build_session(), receiver.url, timeout=(0.5, 0.3), conflict_is_delivered=conflict_is_delivered)


@pytest.mark.parametrize("kind", ["error_rate", "throttle_rate", "drop_rate", "slow_rate"])
def test_transient_faults_are_retried_then_left_to_the_queue(receiver: ReceivingSystem, kind: str) -> None:
    receiver.faults = ReceiverFaults(slow_seconds=0.6)
    setattr(receiver.faults, kind, 1.0)
    result = client(receiver).deliver(BODY, "key-1")
    assert result.outcome is Outcome.FAILED
    assert receiver.attempts == ATTEMPTS
    assert receiver.deliveries == []


def test_a_retry_after_a_transient_fault_delivers_once(receiver: ReceivingSystem) -> None:
    receiver.faults = ReceiverFaults(error_rate=0.5, seed=3)
    outcomes = [client(receiver).deliver(BODY, f"key-{i}").outcome for i in range(20)]
    assert outcomes.count(Outcome.DELIVERED) == 20  # 0.5^4 per order: retries absorb every fault here
    assert receiver.attempts > 20
    assert len(receiver.deliveries) == 20


def test_permanent_rejection_fails_fast(receiver: ReceivingSystem) -> None:
    receiver.reject_ids = {7}
    result = client(receiver).deliver(BODY, "key-1")
    assert result.outcome is Outcome.REJECTED and result.status == 422
    assert receiver.attempts == 1


def test_conflict_is_a_transient_failure_unless_opted_in(receiver: ReceivingSystem) -> None:
    receiver.conflict_on_duplicate = True
    assert client(receiver).deliver(BODY, "key-1").outcome is Outcome.DELIVERED
    attempts = receiver.attempts
    default = client(receiver).deliver(BODY, "key-1")
    assert default.outcome is Outcome.FAILED and default.status == 409  # the queue tries again later
    assert receiver.attempts == attempts + 1  # not retried within the invocation
    opted_in = client(receiver, conflict_is_delivered=True).deliver(BODY, "key-1")
    assert opted_in.outcome is Outcome.ALREADY_DELIVERED and opted_in.accepted


def test_a_passed_deadline_stops_retrying(receiver: ReceivingSystem) -> None:
    receiver.faults = ReceiverFaults(throttle_rate=1.0)
    session = build_session()
    # Past the deadline no new attempt starts; the one under way may run until the invocation's end.
    set_deadline(session, time.monotonic(), time.monotonic() + 5)
    result = TargetClient(session, receiver.url, timeout=(0.5, 0.3)).deliver(BODY, "key-1")
    assert result.outcome is Outcome.FAILED
    assert receiver.attempts == 1


def test_idempotency_key_and_content_type_are_sent_on_every_retry(receiver: ReceivingSystem) -> None:
    receiver.faults = ReceiverFaults(error_rate=0.7, seed=11)
    for _ in range(10):  # bounded: 0.7^4 per call, so ten calls all failing is a broken client, not luck
        if client(receiver).deliver(BODY, "stable-key").accepted:
            break
    attempts = receiver.requests
    assert receiver.deliveries, "no call got through"
    assert any(a.status >= 500 for a in attempts)  # retries happened, not just first tries
    for attempt in attempts:  # the refused ones too: those are the retries' requests
        assert attempt.headers.get("idempotency-key") == "stable-key", attempt
        assert attempt.headers.get("content-type") == "application/json", attempt


def test_retry_after_is_capped_and_a_bad_one_ignored() -> None:
    retry = build_retry()
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "3600"})) == MAX_RETRY_AFTER
    assert retry.get_retry_after(HTTPResponse(status=503, headers={"Retry-After": "2"})) == 2
    assert retry.get_retry_after(HTTPResponse(status=503, headers={"Retry-After": "soon"})) is None
