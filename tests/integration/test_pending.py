"""`traede-export pending`: what Traede's export would give the stack now, asked with the stack's own
query and paged by the poller's rules; it only GETs, never marks, never prints a credential. The CLI
in-process against the local stack (moto, DynamoDB Local, the Traede sandbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers.stack import as_cloudformation_stack
from traede_export.config import DEFAULT_INCLUDES
from traede_export.models import OrderRef
from traede_local.export_query import strip_to_includes
from traede_local.local_stack import REGION, LocalStack, MakeStack
from traede_ops import cli

SYSTEM = "local-erp"


def as_exported(stack: LocalStack, order_id: int) -> dict[str, Any]:
    """The order as the export gives it with the template's default includes."""
    return strip_to_includes(stack.sandbox.order(order_id), set(DEFAULT_INCLUDES.split(",")))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    out = captured.out + captured.err
    return code, json.loads(captured.out) if "--json" in argv else out


@pytest.fixture
def shell(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables `traede-local run` reads against a real Traede, pointing at the sandbox."""
    variables = {
        "TRAEDE_API_URL": stack.sandbox.url,
        "TRAEDE_SYSTEM_ID": SYSTEM,
        "TRAEDE_ACCESS_TOKEN": stack.credentials["traede"]["access_token"],
        "TRAEDE_APP_KEY": stack.credentials["traede"]["app_key"],
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def stack(make_stack: MakeStack) -> LocalStack:
    return make_stack(orders=20)


def test_pending_pages_through_a_traede_that_pages_by_its_own_size(
    stack: LocalStack, shell: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stack.sandbox.server_page_size = 7  # whatever `limit` (60) says
    eligible = stack.sandbox.pending(SYSTEM)
    assert len(eligible) > 14
    code, data = run(capsys, "pending", "--json")
    assert code == cli.EXIT_OK, data
    assert [o["id"] for o in data["orders"]] == eligible and data["count"] == len(eligible)
    assert data["pages"] == -(-len(eligible) // 7) + 1  # short pages are not the end; an empty one is
    assert ["system_id", SYSTEM] in data["query"] and ["limit", "60"] in data["query"]
    first = as_exported(stack, eligible[0])
    assert data["orders"][0]["number"] == first["order_number"]
    assert data["orders"][0]["updated_at"] == first["updated_at"]
    assert data["orders"][0]["size"] == len(json.dumps(first).encode()) and not data["orders"][0]["large"]
    assert data["orders"][0]["ledger"] is None  # no stack, no --table: no ledger view


def test_pending_only_gets_and_marks_nothing(
    stack: LocalStack, shell: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "pending")
    assert code == cli.EXIT_OK and "Nothing was marked." in out
    assert {r["method"] for r in stack.sandbox.requests_log} == {"GET"}
    assert stack.sandbox.mark_attempts == 0 and stack.sandbox.exported(SYSTEM) == set()
    for secret in (shell["TRAEDE_ACCESS_TOKEN"], shell["TRAEDE_APP_KEY"]):
        assert secret not in out


def test_the_saved_orders_are_what_map_and_replay_take_as_they_are(
    stack: LocalStack, shell: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "orders"
    code, data = run(capsys, "pending", "--save", str(saved), "--json")
    assert code == cli.EXIT_OK
    files = sorted(saved.glob("*.json"))
    assert [int(f.stem) for f in sorted(files, key=lambda f: int(f.stem))] == stack.sandbox.pending(SYSTEM)
    first = data["orders"][0]["id"]
    assert json.loads((saved / f"{first}.json").read_text()) == as_exported(stack, first)
    code, mapped = run(capsys, "map", str(saved), "--mapping", "erp-purchase-order.jsonata", "--json")
    assert code == cli.EXIT_OK and len(mapped["requests"]) == len(files)
    code, replayed = run(capsys, "replay", "--dry-run", str(saved), "--json")
    assert code == cli.EXIT_OK and replayed["files_failed"] == 0


def test_a_large_order_is_said_to_go_through_s3(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack: LocalStack = make_stack(orders=2, large=1)
    monkeypatch.setenv("TRAEDE_API_URL", stack.sandbox.url)
    monkeypatch.setenv("TRAEDE_ACCESS_TOKEN", stack.credentials["traede"]["access_token"])
    monkeypatch.setenv("TRAEDE_APP_KEY", stack.credentials["traede"]["app_key"])
    code, data = run(capsys, "pending", "--system-id", SYSTEM, "--json")
    assert code == cli.EXIT_OK
    large = [o for o in data["orders"] if o["large"]]
    assert len(large) == 1 and large[0]["size"] > data["large_threshold"]


def test_without_credentials_it_says_which_variables_to_set(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAEDE_API_URL", stack.sandbox.url)
    monkeypatch.setenv("TRAEDE_SYSTEM_ID", SYSTEM)
    monkeypatch.delenv("TRAEDE_ACCESS_TOKEN", raising=False)
    code, out = run(capsys, "pending")
    assert code == cli.EXIT_FAILURE and "TRAEDE_ACCESS_TOKEN" in out and stack.sandbox.requests_log == []


def test_with_the_stack_it_asks_with_the_pollers_query_and_shows_the_ledgers_view(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The poller's own query (IncludeOpen), not this shell's: no TRAEDE_* variables are set.
    stack: LocalStack = make_stack(orders=12, parameters={"IncludeOpen": "true"})
    name = as_cloudformation_stack(stack)
    refused, failing, unmarked, edited = stack.sandbox.pending(SYSTEM)[:4]
    stack.receiver.reject_ids = {refused}
    stack.receiver.fail_ids = {failing}  # 503 every time: its copy stays on the queue, in flight
    stack.poll()
    stack.sandbox.faults.error_rate = 1.0  # every mark fails: what the ERP accepted stays unmarked
    stack.event_source().poll_once()
    stack.sandbox.faults.error_rate = 0.0
    stack.sandbox.edit(edited)  # a new version no poll has fetched

    code, data = run(capsys, "pending", "--stack", name, "--region", REGION, "--json")
    assert code == cli.EXIT_OK, data
    assert data["source"] == f"the poller {name}-poller" and ["include_open", "1"] in data["query"]
    view = {o["id"]: o["ledger"] for o in data["orders"]}
    assert set(view) >= {refused, failing, unmarked, edited}
    assert view[refused] == "refused" and view[failing] == "in flight"
    assert view[unmarked] == "delivered, not marked" and view[edited] == "new"
    drafts = [o for o in stack.sandbox.order_list() if o.get("status") == "draft"]
    assert drafts and all(d["id"] in view for d in drafts)  # include_open, as the poller asks
    versions = {o["id"]: OrderRef(o["id"], o["updated_at"]).version for o in data["orders"]}
    assert versions[edited] == OrderRef.from_order(stack.sandbox.order(edited)).version


def test_with_the_stack_and_the_shells_credentials_the_secret_is_not_read(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # For an operator policy without PendingTraedeCredentials (docs/deploy-and-security.md).
    stack: LocalStack = make_stack(orders=3)
    name = as_cloudformation_stack(stack)
    secret = stack.poller.spec.environment["TRAEDE_CREDENTIALS_SECRET"]
    stack.secretsmanager.put_secret_value(SecretId=secret, SecretString="not json")
    code, out = run(capsys, "pending", "--stack", name, "--region", REGION)
    assert code == cli.EXIT_FAILURE and "is not valid JSON" in out  # it did read the secret
    monkeypatch.setenv("TRAEDE_ACCESS_TOKEN", stack.credentials["traede"]["access_token"])
    monkeypatch.setenv("TRAEDE_APP_KEY", stack.credentials["traede"]["app_key"])
    code, data = run(capsys, "pending", "--stack", name, "--region", REGION, "--json")
    assert code == cli.EXIT_OK and data["count"] == len(stack.sandbox.pending(SYSTEM))
