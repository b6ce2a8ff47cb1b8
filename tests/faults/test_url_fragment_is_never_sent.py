"""A TARGET_URL's #fragment is never sent, so it never decides where an order goes, and `map` shows
the URL without it (review of issue 21): `PUT https://erp/po#{order_number}` put every order on
`/po`, one over the other, each 2xx marking its order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traede_export.errors import ConfigError
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"


def test_a_fragment_placeholder_is_refused_at_cold_start(make_stack: MakeStack) -> None:
    stack: LocalStack = make_stack(orders=3, parameters={"TargetMethod": "PUT"}, target_path="/po#{order_number}")
    with pytest.raises(ConfigError, match=r"TARGET_URL .*not in the #fragment"):
        stack.forwarder.cold_start()
    stack.poll()
    stack.event_source().drain(max_seconds=5)
    # On main all three were PUT on /orders/po and marked.
    assert stack.receiver.deliveries == [] and stack.sandbox.exported(SYSTEM) == set()


def test_map_refuses_a_fragment_placeholder_as_the_forwarder_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "order.json").write_text(
        json.dumps({"id": 7, "order_number": "PO-7", "updated_at": "2026-01-01 00:00:00"})
    )
    url = "https://erp.example.com/po#{order_number}"
    capsys.readouterr()
    code = cli.main(["map", str(tmp_path / "order.json"), "--url", url, "--method", "PUT", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_FAILURE and "#fragment" in out["error"] and "requests" not in out, out


def test_map_shows_no_fragment_the_request_never_carries(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=1, parameters={"TargetMethod": "PUT"}, target_path="/po/{order_number}#top")
    order = stack.sandbox.order(next(iter(stack.sandbox.pending(SYSTEM))))
    (tmp_path / "order.json").write_text(json.dumps(order))
    url = stack.forwarder.environment["TARGET_URL"]
    capsys.readouterr()
    code = cli.main(["map", str(tmp_path / "order.json"), "--url", url, "--method", "PUT", "--json"])
    (shown,) = json.loads(capsys.readouterr().out)["requests"]
    assert code == cli.EXIT_OK
    stack.poll()
    stack.event_source().drain(max_seconds=30)
    (arrived,) = stack.receiver.requests
    assert shown["url"] == stack.receiver.url.removesuffix("/orders") + arrived.path
    assert "#" not in shown["url"]
