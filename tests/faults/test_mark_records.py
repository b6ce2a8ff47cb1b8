"""Mark records are written before the mark-as-exported call: what happens when the call then fails.

The real handlers against moto, DynamoDB Local and the local HTTP servers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from helpers.stack import emitted_metrics
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
UNDO = b"marked_version = :v AND mark_token = :token"  # the guard of `ExportLedger.undo_marks` (protocol.UNDO_MARK)


class FailedUndo:
    """Answers every take-back of a mark record with AccessDenied (not retried by botocore)."""

    def __init__(self) -> None:
        self.hits = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body", b"")
        if UNDO not in (body if isinstance(body, bytes) else body.encode()):
            return None
        self.hits += 1
        error = {"Code": "AccessDeniedException", "Message": "denied"}
        return SimpleNamespace(status_code=400), {"Error": error, "ResponseMetadata": {}}


@pytest.fixture
def failed_undo(hook_ledger_writes: Callable[[Callable[..., Any]], None]) -> FailedUndo:
    hook = FailedUndo()
    hook_ledger_writes(hook)
    return hook


def test_a_failed_mark_is_taken_back_and_the_redelivery_marks_without_posting_again(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=4, visibility_timeout=1)
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    pending = sandbox.pending(SYSTEM)
    stack.poll()
    sandbox.faults.error_rate = 1.0  # delivered, then every mark-as-exported fails
    source = stack.event_source()
    source.poll_once()
    sandbox.faults.error_rate = 0.0
    assert receiver.delivered_ids() == set(pending) and not sandbox.exported(SYSTEM)
    source.drain(max_seconds=30)
    assert sandbox.exported(SYSTEM) == set(pending)
    assert len(receiver.deliveries) == len(pending)  # marked on redelivery, never POSTed again


def test_a_mark_record_left_without_its_mark_is_marked_by_the_first_poll_after_the_lease(
    make_stack: MakeStack, failed_undo: FailedUndo
) -> None:
    # The mark failed and so did the take-back of its record (or the Lambda died between the two):
    # the redelivery sees the version marked and stops. Traede still lists the order, so the first
    # poll after its in-flight lease fetches it again, and that copy marks it. Nothing is POSTed again.
    stack: LocalStack = make_stack(orders=4, visibility_timeout=1, overrides={"IN_FLIGHT_LEASE_SECONDS": "2"})
    sandbox, receiver = stack.sandbox, stack.receiver
    assert sandbox is not None and receiver is not None
    pending = sandbox.pending(SYSTEM)
    stack.poll()
    sandbox.faults.error_rate = 1.0
    source = stack.event_source()
    source.poll_once()
    sandbox.faults.error_rate = 0.0
    assert failed_undo.hits
    source.drain(max_seconds=30)  # the redeliveries: "already delivered and marked"
    assert not sandbox.exported(SYSTEM) and sandbox.pending(SYSTEM) == pending
    time.sleep(2.5)  # the poll's in-flight lease runs out
    assert stack.poll()["enqueued"] == len(pending)
    source.drain(max_seconds=30)
    assert sandbox.exported(SYSTEM) == set(pending)
    assert len(receiver.deliveries) == len(pending)


def test_a_mark_record_stranded_by_a_failing_invocation_is_counted(
    make_stack: MakeStack, failed_undo: FailedUndo, capsys: pytest.CaptureFixture[str]
) -> None:
    # The mark fails with other than Traede's answer (its secret unreadable: the invocation fails) and
    # the take-back of its record fails too. The handler emitted its metrics only when the batch
    # returned, so MarkRecordsStranded, the one alarm on this state, was never counted.
    stack: LocalStack = make_stack(orders=2, visibility_timeout=1)
    secret = stack.forwarder.environment["TRAEDE_CREDENTIALS_SECRET"]
    stack.poll()
    stack.secretsmanager.put_secret_value(SecretId=secret, SecretString=json.dumps({"app_key": "k"}))  # no token
    capsys.readouterr()
    source = stack.event_source()
    source.poll_once()
    assert source.stats.crashes == 1 and failed_undo.hits  # delivered, the mark failed the invocation
    assert stack.receiver is not None and stack.receiver.delivered_ids()
    assert emitted_metrics(capsys.readouterr().out).get("MarkRecordsStranded") == len(stack.receiver.delivered_ids())
