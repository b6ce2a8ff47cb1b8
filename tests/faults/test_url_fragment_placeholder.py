"""A placeholder in TARGET_URL's fragment never sends every order to one resource, and `map`
shows the URL really sent (review of issue 21): the fragment is never sent, so
`PUT https://erp/po#{order_number}` puts every order on `/po`, each 2xx marking its order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traede_export.config import ConfigError
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def test_a_fragment_placeholder_never_sends_every_order_to_one_resource(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3, parameters={"TargetMethod": "PUT"}, target_path="/po#{order_number}")
    try:
        stack.forwarder.cold_start()
    except ConfigError:
        return  # refused at cold start: the right answer
    stack.poll()
    stack.event_source().drain(max_seconds=30)
    delivered = stack.receiver.deliveries
    # Never two orders on one resource; on main all three are PUT on /orders/po, one over the
    # other, and each 2xx marks its order.
    assert len({d.path for d in delivered}) == len(delivered), sorted((d.order_id, d.method, d.path) for d in delivered)


def test_map_shows_no_fragment_the_request_never_carries(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=1, parameters={"TargetMethod": "PUT"}, target_path="/po#{order_number}")
    order = stack.sandbox.order(next(iter(stack.sandbox.pending(SYSTEM))))
    (tmp_path / "order.json").write_text(json.dumps(order))
    url = stack.forwarder.environment["TARGET_URL"]
    capsys.readouterr()
    code = cli.main(["map", str(tmp_path / "order.json"), "--url", url, "--method", "PUT", "--json"])
    (shown,) = json.loads(capsys.readouterr().out)["requests"]
    if code != cli.EXIT_OK:
        return  # refused, as the forwarder should
    stack.poll()
    stack.event_source().drain(max_seconds=30)
    (arrived,) = stack.receiver.requests
    assert shown["url"] == stack.receiver.url.removesuffix("/orders") + arrived.path
