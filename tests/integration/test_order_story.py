"""`traede-export order ID`: one order's story from the ledger and the DLQ, and what happens next;
it never changes anything. The CLI in-process against the local stack (moto, DynamoDB Local, the
Traede sandbox and a receiving system that answers its document number)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest

from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

SYSTEM = "local-erp"


def where(stack: LocalStack, dlq_url: str | None = None) -> list[str]:
    return [
        "--table",
        stack.table,
        "--dlq-url",
        dlq_url or stack.dlq_url,
        "--system-id",
        SYSTEM,
        "--endpoint-url",
        os.environ["AWS_ENDPOINT_URL"],
    ]


def story(capsys: pytest.CaptureFixture[str], stack: LocalStack, order_id: int, dlq_url: str | None = None) -> Any:
    capsys.readouterr()
    assert cli.main(["order", str(order_id), *where(stack, dlq_url), "--json"]) == cli.EXIT_OK
    return json.loads(capsys.readouterr().out)


def what_is_stored(stack: LocalStack) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Every ledger item and every DLQ message (id, body): what `order` must leave as it was."""
    items = stack.dynamodb.scan(TableName=stack.table)["Items"]
    letters = sorted((m["MessageId"], m["Body"]) for m in stack.dlq_messages())
    return sorted(items, key=lambda i: str(i["pk"])), letters


@dataclass(frozen=True)
class Orders:
    delivered: int
    refused: int
    in_flight: int
    parked: int


@pytest.fixture
def stack(make_stack: MakeStack) -> LocalStack:
    return make_stack(orders=8, parameters={"TargetReference": "body.document_number"})


@pytest.fixture
def orders(stack: LocalStack) -> Orders:
    """Four orders, each in another place: delivered, refused, in flight, parked after a refused mark."""
    found = Orders(*stack.sandbox.pending(SYSTEM)[:4])
    stack.receiver.reject_ids = {found.refused}
    stack.poll()
    stack.sandbox.delete(found.parked)  # deleted in Traede after the poll: its mark is refused, it is parked
    stack.event_source().drain(max_seconds=60)
    stack.sandbox.edit(found.in_flight)  # a new version, fetched by the next poll and left on the queue
    stack.poll()
    return found


def test_a_delivered_order_shows_its_key_its_reference_and_that_it_is_done(
    stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = orders.delivered
    data = story(capsys, stack, order_id)
    assert (data["order_id"], data["system_id"]) == (order_id, SYSTEM)
    (version,) = data["versions"]
    (delivery,) = [d for d in stack.receiver.deliveries if d.order_id == order_id]
    assert version["state"] == "marked" and version["key_recorded"]
    assert version["idempotency_key"] == delivery.idempotency_key and version["reference"] == delivery.document
    assert {"claimed", "delivered", "marked"} <= set(version["at"])
    assert data["dlq"]["read"] and data["dlq"]["copies"] == []
    assert data["next"] == "delivered and marked"


def test_a_refused_order_shows_the_erps_reason_and_says_to_fix_then_redrive(
    stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]
) -> None:
    data = story(capsys, stack, orders.refused)
    (version,) = data["versions"]
    assert version["state"] == "refused" and "HTTP 422" in version["failure"] and "refused" in version["at"]
    (copy,) = data["dlq"]["copies"]
    assert copy["version"] == version["version"] and "HTTP 422" in copy["last_error"]
    assert data["next"] == "refused by the ERP: fix the ERP (or the order in Traede), then `redrive`"


def test_an_order_in_flight_shows_its_new_version_queued_and_its_old_one_superseded(
    stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]
) -> None:
    data = story(capsys, stack, orders.in_flight)
    new, old = data["versions"]
    assert new["version"] > old["version"]
    assert (new["state"], old["state"]) == ("claimed", "superseded")
    assert not new["key_recorded"] and new["idempotency_key"].endswith(new["version"])
    assert data["next"].startswith("queued: the forwarder delivers it on its next try")


def test_a_parked_order_shows_its_copy_on_the_dlq_and_that_redrive_only_marks_it(
    stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]
) -> None:
    data = story(capsys, stack, orders.parked)
    (version,) = data["versions"]
    assert version["state"] == "delivered" and version["reference"]
    (copy,) = data["dlq"]["copies"]
    assert "Traede refused mark-as-exported" in copy["last_error"] and copy["attempts"] >= 1
    assert "no receive limit applies" in data["dlq"]["how"]
    assert data["next"].startswith("delivered, not marked: its copy is parked on the DLQ")
    assert "`redrive` marks it without posting it again" in data["next"]


def test_order_changes_nothing(stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]) -> None:
    before = what_is_stored(stack)
    queued = stack.queue_depth(stack.queue_url)
    for order_id in (orders.delivered, orders.refused, orders.in_flight, orders.parked):
        story(capsys, stack, order_id)
        assert cli.main(["order", str(order_id), *where(stack)]) == cli.EXIT_OK  # the table too
    assert what_is_stored(stack) == before and stack.queue_depth(stack.queue_url) == queued


def test_a_queue_with_a_receive_limit_is_not_read_and_it_says_so(
    stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]
) -> None:
    # The order queue redrives after 5 receives: a look would bring its messages closer to the DLQ.
    data = story(capsys, stack, orders.in_flight, dlq_url=stack.queue_url)
    assert not data["dlq"]["read"] and "maxReceiveCount 5" in data["dlq"]["how"]
    assert "DLQ was not read" not in data["next"]  # the version is queued: that much the ledger knows


def test_an_order_nobody_has_seen(stack: LocalStack, orders: Orders, capsys: pytest.CaptureFixture[str]) -> None:
    data = story(capsys, stack, 999_999)
    assert data["versions"] == [] and data["next"].startswith("not in the ledger and not on the DLQ")
