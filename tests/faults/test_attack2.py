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


class LostClaimAnswer:
    """Sends the first claim's UpdateItem to DynamoDB for real, then loses its answer (a read
    time-out): botocore tries the same UpdateItem again, as it does for any connection error."""

    def __init__(self) -> None:
        self.lost = 0
        self._http = urllib3.PoolManager()

    def __call__(self, request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if self.lost or CLAIM not in body:
            return None
        self._http.request("POST", request.url, body=body, headers=dict(request.headers.items()))
        self.lost += 1
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.fixture
def lost_claim_answer() -> Iterator[LostClaimAnswer]:
    hook = LostClaimAnswer()
    events = wiring._aws_session().events  # clients copy their session's hooks: register before the cold start
    events.register("before-send.dynamodb.UpdateItem", hook, unique_id="attack2-lost-claim")
    yield hook
    events.unregister("before-send.dynamodb.UpdateItem", unique_id="attack2-lost-claim")


def test_a_claim_whose_answer_was_lost_is_enqueued_not_stranded_for_the_lease(
    make_stack: MakeStack, lost_claim_answer: LostClaimAnswer
) -> None:
    # A page of one order is claimed with one UpdateItem. Its write took effect but the answer was
    # lost, so botocore sent it again, and the second try met the first one's lease: the claim read as
    # "in flight elsewhere", the order was not enqueued and sat out the whole lease (2 h) while the
    # poll reported only OrdersSkippedInFlight, which no alarm watches.
    stack: LocalStack = make_stack(orders=1)
    sandbox = stack.sandbox
    assert sandbox is not None
    result = stack.poll()
    assert lost_claim_answer.lost == 1
    assert (result["enqueued"], result["skipped"], result["failed"]) == (1, 0, 0)
