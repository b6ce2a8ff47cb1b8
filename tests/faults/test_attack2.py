"""Final attack on the integration: lost answers of conditional writes.

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
CLAIM = b"enqueued_version = :v, lease_until = :until"  # the update of `ExportLedger.claim`
SIGHTING = b'"invalid#'  # the key of `ExportLedger.first_sighting`'s item


class LostAnswer:
    """Sends the first matching ledger write to DynamoDB for real, then loses its answer (a read
    time-out): botocore sends the same request again, as it does for any connection error."""

    def __init__(self, marker: bytes) -> None:
        self.lost = 0
        self._marker = marker
        self._http = urllib3.PoolManager()

    def __call__(self, request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if self.lost or self._marker not in body:
            return None
        self._http.request("POST", request.url, body=body, headers=dict(request.headers.items()))
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)


def lose_first_answer(operation: str, marker: bytes) -> Iterator[LostAnswer]:
    hook = LostAnswer(marker)
    events = wiring._aws_session().events  # clients copy their session's hooks: register before the cold start
    events.register(f"before-send.dynamodb.{operation}", hook, unique_id="attack2-lost-answer")
    yield hook
    events.unregister(f"before-send.dynamodb.{operation}", unique_id="attack2-lost-answer")


@pytest.fixture
def lost_claim_answer() -> Iterator[LostAnswer]:
    yield from lose_first_answer("UpdateItem", CLAIM)


@pytest.fixture
def lost_sighting_answer() -> Iterator[LostAnswer]:
    yield from lose_first_answer("PutItem", SIGHTING)


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


def test_an_invalid_entry_whose_sighting_answer_was_lost_is_parked(
    make_stack: MakeStack, lost_sighting_answer: LostAnswer
) -> None:
    # The sighting's PutItem took effect but its answer was lost; botocore's second try met the item
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
