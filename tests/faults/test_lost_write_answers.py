"""Ledger writes that take effect but whose answers are lost (a read time-out): botocore sends them
again, or gives up after its retries. Either way, nothing is stranded and nothing is done twice.

The real handlers against moto, DynamoDB Local and the local HTTP servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from botocore.exceptions import ReadTimeoutError

from traede_export import wiring
from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
CLAIM = b"enqueued_version = :"  # the update of `ExportLedger.claim_many` (protocol.CLAIM)
SIGHTING = b'"invalid#'  # the key of `ExportLedger.first_sighting`'s item


class LostAnswer:
    """Sends the first matching ledger write (or, with `every`, each one) to DynamoDB for real, then
    loses its answer (a read time-out): botocore sends the same request again, as it does for any
    connection error, and gives up once its retries are spent."""

    def __init__(self, marker: bytes, every: bool = False) -> None:
        self.lost = 0
        self._marker = marker
        self._every = every
        self._http = urllib3.PoolManager()

    def __call__(self, request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if (self.lost and not self._every) or self._marker not in body:
            return None
        self._http.request("POST", request.url, body=body, headers=dict(request.headers.items()))
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)


WRITES = ("UpdateItem", "PutItem", "TransactWriteItems")


def lose_answers(marker: bytes, every: bool = False) -> Iterator[LostAnswer]:
    hook = LostAnswer(marker, every)
    events = wiring._aws_session().events  # clients copy their session's hooks: register before the cold start
    for operation in WRITES:
        events.register(f"before-send.dynamodb.{operation}", hook, unique_id=f"lost-answer-{operation}")
    yield hook
    for operation in WRITES:
        events.unregister(f"before-send.dynamodb.{operation}", unique_id=f"lost-answer-{operation}")


@pytest.fixture
def lost_claim_answer() -> Iterator[LostAnswer]:
    yield from lose_answers(CLAIM)


@pytest.fixture
def lost_claim_answers() -> Iterator[LostAnswer]:
    yield from lose_answers(CLAIM, every=True)


@pytest.fixture
def lost_sighting_answer() -> Iterator[LostAnswer]:
    yield from lose_answers(SIGHTING)


def test_a_claim_whose_answer_was_lost_is_enqueued_not_stranded_for_the_lease(
    make_stack: MakeStack, lost_claim_answer: LostAnswer
) -> None:
    # A page of one order is claimed with one UpdateItem. Its write took effect but the answer was
    # lost, so botocore sent it again, and the second try met the first one's lease: the claim read as
    # "in flight elsewhere", the order was not enqueued and sat out the whole lease (2 h) while the
    # poll reported only OrdersSkippedInFlight, which no alarm watches.
    stack: LocalStack = make_stack(orders=1, dynamodb="local")
    sandbox = stack.sandbox
    assert sandbox is not None
    result = stack.poll()
    assert lost_claim_answer.lost == 1
    assert (result["enqueued"], result["skipped"], result["failed"]) == (1, 0, 0)


def test_claims_whose_answers_were_all_lost_are_enqueued_not_stranded(
    make_stack: MakeStack, lost_claim_answers: LostAnswer
) -> None:
    # A page's claims took effect, but every answer was lost, botocore's retries included. The
    # exception failed the whole poll: the claims kept their 2 h lease, nothing was enqueued,
    # EnqueueFailures was not counted, and later polls only counted OrdersSkippedInFlight.
    stack: LocalStack = make_stack(orders=6, dynamodb="local")
    pending = stack.sandbox.pending(SYSTEM) if stack.sandbox else []
    result = stack.poll()
    assert lost_claim_answers.lost >= 2  # the first try and botocore's retries
    assert (result["enqueued"], result["skipped"], result["failed"]) == (len(pending), 0, 0)
    assert stack.queue_depth(stack.queue_url) == len(pending)


def test_an_invalid_entry_whose_sighting_answer_was_lost_is_parked(
    make_stack: MakeStack, lost_sighting_answer: LostAnswer
) -> None:
    # The sighting's write took effect but its answer was lost; botocore's second try met the item
    # the first one wrote and read as "seen before", so the entry was never parked: InvalidOrdersAlarm
    # fired on every poll and pointed at an empty DLQ for as long as Traede listed the entry.
    stack: LocalStack = make_stack(orders=1, dynamodb="local")
    assert stack.sandbox is not None
    stack.sandbox.add_orders([{"id": 7002, "updated_at": "last Tuesday"}])
    assert stack.poll()["invalid"] == 1
    assert lost_sighting_answer.lost == 1
    (parked,) = stack.dlq_messages()
    assert "not an instant" in parked["MessageAttributes"]["failure_reason"]["StringValue"]
    assert stack.poll()["invalid"] == 1
    assert len(stack.dlq_messages()) == 1  # and still parked once
