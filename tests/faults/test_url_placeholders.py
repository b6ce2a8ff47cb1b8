"""A value filled into TARGET_URL never changes which path segment it fills.

requests and urllib3 drop "." and ".." segments from a path, and requests turns %2E back into
"." before that: an order numbered ".." would move `PUT .../po/{order_number}` to `PUT .../`,
whose 2xx would count as a delivery and mark the order. Real loopback servers: the receiving
system records the path every request arrived at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from traede_local.lambda_runtime import sqs_event
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
DOT_SEGMENTS = [".", ".."]


def renumbered(stack: LocalStack, numbers: list[str]) -> list[dict[str, Any]]:
    """Pending orders of the sandbox, given these order numbers (in Traede too)."""
    sandbox = stack.sandbox
    orders = [o for o in sandbox.order_list() if o["id"] in sandbox.pending(SYSTEM)][: len(numbers)]
    assert len(orders) == len(numbers)
    changed = [{**o, "order_number": n} for o, n in zip(orders, numbers, strict=True)]
    sandbox.add_orders(changed)
    return changed


def test_a_dot_segment_order_number_is_parked_and_never_moves_the_request(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=6, parameters={"TargetMethod": "PUT"}, target_path="/po/{order_number}")
    orders = renumbered(stack, [*DOT_SEGMENTS, "%2E%2E", "PO 7/8", "..."])  # every pending order
    by_number = {o["order_number"]: o["id"] for o in orders}
    stack.poll()
    stack.event_source().drain(max_seconds=60)

    receiver = stack.receiver
    # Every request reached the resource its order names, and nothing else was touched.
    assert receiver.requests and all(r.path.startswith("/orders/po/") for r in receiver.requests)
    # "%2E%2E" is sent as %252E%252E: only a value that is itself a dot segment could move it.
    assert {r.path for r in receiver.requests} == {"/orders/po/%252E%252E", "/orders/po/PO%207%2F8", "/orders/po/..."}
    dotted = {by_number[n] for n in DOT_SEGMENTS}
    assert not dotted & receiver.delivered_ids()
    assert not dotted & stack.sandbox.exported(SYSTEM)  # never marked
    assert {by_number[n] for n in ("%2E%2E", "PO 7/8", "...")} == stack.sandbox.exported(SYSTEM)
    # Parked at once, each with a reason naming the placeholder: a data problem for a person.
    parked = {
        json.loads(m["Body"])["id"]: m["MessageAttributes"]["failure_reason"]["StringValue"]
        for m in stack.dlq_messages()
    }
    assert set(parked) == dotted
    for reason in parked.values():
        assert "{order_number}" in reason and "dot segment" in reason


def test_map_shows_the_url_really_sent_and_refuses_a_dot_segment(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=4, parameters={"TargetMethod": "PUT"}, target_path="/po/./{order_number}")
    good, dotted = renumbered(stack, ["PO-1", ".."])
    (tmp_path / "orders.json").write_text(json.dumps([good, dotted]))
    url = stack.forwarder.environment["TARGET_URL"]

    capsys.readouterr()
    code = cli.main(["map", str(tmp_path / "orders.json"), "--url", url, "--method", "PUT", "--json"])
    shown = json.loads(capsys.readouterr().out)["requests"]
    assert code == cli.EXIT_FAILURE  # one order cannot be shaped
    assert shown[1]["ok"] is False and "dot segment" in shown[1]["error"]

    # What `map` shows is what arrives: the forwarder's own request, on the wire.
    body = json.dumps(good)
    message = {"MessageId": "m-1", "ReceiptHandle": "r", "Body": body, "Attributes": {"ApproximateReceiveCount": "1"}}
    stack.forwarder.invoke(sqs_event([message], "arn"))
    (arrived,) = stack.receiver.requests
    assert shown[0]["url"] == stack.receiver.url.removesuffix("/orders") + arrived.path
    assert arrived.path == "/orders/po/PO-1"
