"""The operator CLI, in-process against moto: `cli.main([...])`, parsing its `--json` output."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from traede_export.models import utc_text
from traede_local.events import EVENTS
from traede_local.lambda_endpoint import LambdaEndpoint
from traede_local.local_stack import REGION, LocalStack, MakeStack
from traede_local.sandbox import ManualClock
from traede_ops import cli
from traede_ops.ops import peek_messages

SYSTEM = "local-erp"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()  # drop what the handlers run by the test itself logged
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv else out


def where(stack: LocalStack) -> list[str]:
    return [
        "--queue-url",
        stack.queue_url,
        "--dlq-url",
        stack.dlq_url,
        "--table",
        stack.table,
        "--system-id",
        SYSTEM,
        "--endpoint-url",
        os.environ["AWS_ENDPOINT_URL"],
    ]


def drain(stack: LocalStack) -> None:
    stack.event_source().drain(max_seconds=120)


# ------------------------------------------------------------------------------ help and usage


@pytest.mark.parametrize("command", ["map", "pending", "replay", "reexport", "redrive", "status", "order"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert command in capsys.readouterr().out


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2


def test_missing_resources_are_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAEDE_SYSTEM_ID", raising=False)
    code, out = run(capsys, "status", "--json")
    assert code == cli.EXIT_FAILURE
    assert out["ok"] is False and "--queue-url" in out["error"] and "--system-id" in out["error"]


# ------------------------------------------------------------------------------ stacks


def test_unknown_stack_is_a_clear_failure(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    commands = (["status"], ["redrive"], ["reexport", "--since", "2026-01-01T00:00:00Z"], ["replay", "x.json"])
    for command in (*commands, ["order", "4711"], ["pending"]):
        code = cli.main([*command, "--stack", "no-such-stack", "--region", REGION])
        captured = capsys.readouterr()
        assert code == cli.EXIT_FAILURE
        assert "stack 'no-such-stack' not found" in captured.err


def test_stack_outputs_and_system_id_parameter_are_used(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=5)
    name = f"traede-export-{secrets.token_hex(3)}"
    outputs = {
        "QueueUrl": stack.queue_url,
        "DeadLetterQueueUrl": stack.dlq_url,
        "LedgerTableName": stack.table,
        "PollerFunctionName": "poller-fn",
    }
    template = {
        "Parameters": {"SystemId": {"Type": "String"}},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "SystemId", "ParameterValue": SYSTEM}],
    )
    stack.poll()
    code, out = run(capsys, "status", "--stack", name, "--region", REGION, "--json")
    assert code == cli.EXIT_OK, out
    assert out["system_id"] == SYSTEM
    assert out["queue"]["url"] == stack.queue_url and out["ledger"]["table"] == stack.table
    assert out["ledger"]["in_flight"] == out["ledger"]["orders"] > 0


# ------------------------------------------------------------------------------ replay


def test_replay_sends_valid_files_and_reports_bad_ones(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=3)
    orders = stack.sandbox.order_list()
    (tmp_path / "one.json").write_text(json.dumps(orders[0]))
    (tmp_path / "two.json").write_text(json.dumps(orders[1:3]))
    (tmp_path / "not-an-order.json").write_text(json.dumps({"hello": "world"}))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "half.json").write_text(json.dumps([orders[0], {"id": "x"}]))
    missing = tmp_path / "missing.json"

    code, out = run(
        capsys, "replay", str(tmp_path), str(missing), str(EVENTS / "sqs-order.json"), *where(stack), "--json"
    )
    assert code == cli.EXIT_FAILURE  # some files failed ...
    files = {Path(f["path"]).name: f for f in out["files"]}
    assert files["one.json"]["ok"] and files["one.json"]["sent"] == [orders[0]["id"]]
    assert files["two.json"]["sent"] == [orders[1]["id"], orders[2]["id"]]
    assert files["sqs-order.json"]["sent"] == [4711]
    assert files["missing.json"]["error"] == "no such file"
    assert "not a production order" in files["not-an-order.json"]["error"]
    assert files["broken.json"]["error"].startswith("not JSON")
    assert files["half.json"]["error"].startswith("item 1:") and files["half.json"]["sent"] == []
    assert out["orders_sent"] == 4 and out["files_failed"] == 4

    on_queue = peek_messages(
        stack.sqs, stack.queue_url, wait_seconds=0
    )  # ... but the good ones were sent, and only those
    ids = sorted(int(m["MessageAttributes"]["order_id"]["StringValue"]) for m in on_queue)
    assert ids == sorted([orders[0]["id"], orders[1]["id"], orders[2]["id"], 4711])
    attrs = on_queue[0]["MessageAttributes"]
    assert attrs["system_id"]["StringValue"] == SYSTEM
    assert attrs["run_id"]["StringValue"] == out["run_id"]

    drain(stack)  # the replayed orders are deliverable (4711 is not in the sandbox, but is delivered)
    assert set(stack.receiver.delivered_ids()) >= {o["id"] for o in orders}


def test_replay_dry_run_validates_without_sending(
    make_stack: MakeStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=2)
    (tmp_path / "o.json").write_text(json.dumps(stack.sandbox.order_list()))
    code, out = run(capsys, "replay", "--dry-run", str(tmp_path / "o.json"), "--json")
    assert code == cli.EXIT_OK and out["dry_run"] and len(out["files"][0]["orders"]) == 2
    assert stack.queue_depth(stack.queue_url) == 0

    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = run(capsys, "replay", "--dry-run", str(empty), "--json")
    assert code == cli.EXIT_FAILURE and "no *.json" in out["files"][0]["error"]


def test_replay_human_output(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=1)
    code, out = run(capsys, "replay", str(EVENTS / "order.json"), *where(stack))
    assert code == cli.EXIT_OK
    assert "4711" in out and "sent 1 order(s) from 1 file(s); 0 file(s) failed" in out


# ------------------------------------------------------------------------------ redrive


def park(stack: LocalStack, orders: list[dict[str, Any]]) -> None:
    for order in orders:
        stack.sqs.send_message(
            QueueUrl=stack.dlq_url,
            MessageBody=json.dumps(order),
            MessageAttributes={
                "order_id": {"DataType": "String", "StringValue": str(order["id"])},
                "failure_reason": {"DataType": "String", "StringValue": "HTTP 503 from the receiving system"},
            },
        )


def test_redrive_dry_run_then_move(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=14)
    orders = stack.sandbox.order_list()[:12]
    park(stack, orders)

    code, out = run(capsys, "redrive", "--dry-run", *where(stack), "--json")
    assert code == cli.EXIT_OK and out["dry_run"] and out["moved"] == 0
    assert sorted(m["order_id"] for m in out["messages"]) == sorted(o["id"] for o in orders)
    assert all(m["attempts"] >= 1 and "503" in m["last_error"] for m in out["messages"])
    assert stack.queue_depth(stack.dlq_url) == 12 and stack.queue_depth(stack.queue_url) == 0

    code, out = run(capsys, "redrive", *where(stack), "--json")
    assert code == cli.EXIT_OK, out
    assert out["moved"] == 12 and out["method"] == "batch"  # moto has no StartMessageMoveTask
    assert "StartMessageMoveTask unavailable" in out["note"]
    assert stack.queue_depth(stack.dlq_url) == 0 and stack.queue_depth(stack.queue_url) == 12
    moved = peek_messages(stack.sqs, stack.queue_url, wait_seconds=0)
    assert all("503" in m["MessageAttributes"]["failure_reason"]["StringValue"] for m in moved)

    drain(stack)
    assert stack.receiver.delivered_ids() == {o["id"] for o in orders}


def test_redrive_human_summary_and_batch_method(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=2)
    park(stack, stack.sandbox.order_list()[:1])
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="garbage")  # no order id anywhere
    code, out = run(capsys, "redrive", "--method", "batch", *where(stack))
    assert code == cli.EXIT_OK
    assert "2 message(s) on the dead-letter queue" in out and "HTTP 503" in out
    assert "moved 2 of 2" in out


def test_redrive_task_method_fails_clearly_where_unsupported(
    make_stack: MakeStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=1)
    park(stack, stack.sandbox.order_list())
    code = cli.main(["redrive", "--method", "task", *where(stack)])
    assert code == cli.EXIT_FAILURE
    assert "StartMessageMoveTask failed" in capsys.readouterr().err
    assert stack.queue_depth(stack.dlq_url) == 1  # nothing moved


def test_redrive_of_an_empty_dlq(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=1)
    code, out = run(capsys, "redrive", *where(stack), "--json")
    assert code == cli.EXIT_OK and out["messages"] == [] and out["moved"] == 0
    code, text = run(capsys, "redrive", *where(stack))
    assert code == cli.EXIT_OK and "empty" in text


# ------------------------------------------------------------------------------ status


def test_status_in_flight_then_healthy(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=15)
    code, out = run(capsys, "status", *where(stack), "--json")
    assert code == cli.EXIT_FAILURE and "no successful poll recorded" in out["problems"]

    poll = stack.poll()
    code, out = run(capsys, "status", *where(stack), "--json")
    assert out["ledger"]["in_flight"] == poll["enqueued"] > 0
    assert out["queue"]["total"] == poll["enqueued"] and out["queue"]["oldest_age_seconds"] is not None
    assert out["last_poll"]["enqueued"] == poll["enqueued"]
    assert code == cli.EXIT_OK and out["healthy"]  # in flight and young is not stuck

    drain(stack)
    code, out = run(capsys, "status", *where(stack), "--json")
    assert code == cli.EXIT_OK and out["verdict"] == "healthy"
    assert out["ledger"]["in_flight"] == 0 and out["ledger"]["delivered_not_marked"] == 0
    assert out["queue"]["total"] == 0 and out["dlq"]["total"] == 0

    code, text = run(capsys, "status", *where(stack))
    assert code == cli.EXIT_OK and "healthy" in text and "last successful poll" in text


def test_status_names_what_is_stuck(make_stack: MakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack: LocalStack = make_stack(orders=4)
    stack.poll()
    park(stack, stack.sandbox.order_list()[:1])
    time.sleep(1.1)  # SentTimestamp has milliseconds, ages are rounded: let the messages age past 0
    code, out = run(capsys, "status", *where(stack), "--max-age", "0", "--max-poll-age", "0", "--json")
    assert code == cli.EXIT_FAILURE and not out["healthy"]
    text = out["verdict"]
    assert "dead-letter queue" in text and "oldest queued message" in text and "no successful poll" in text


# ------------------------------------------------------------------------------ reexport


@pytest.mark.parametrize("since", ["last tuesday", "2999-01-01T00:00:00Z", ""])
def test_reexport_rejects_a_bad_since(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reexport", "--since", since, "--function", "f"])
    assert exit_.value.code == 2
    assert "--since" in capsys.readouterr().err


def test_reexport_requires_since_against_aws() -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reexport", "--function", "f"])
    assert exit_.value.code == 2


@pytest.fixture
def lambda_endpoint(make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stack whose poller is reachable through Lambda's real Invoke API (boto3 -> HTTP -> handler)."""
    # The handlers run in this process: keep their logs and metrics out of the CLI's --json output.
    quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    stack: LocalStack = make_stack(orders=20, overrides=quiet, traede_clock=ManualClock())
    endpoint = LambdaEndpoint({"poller": stack.poller})
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint.start())
    yield stack
    endpoint.stop()


def test_reexport_invokes_the_poller(lambda_endpoint: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    stack = lambda_endpoint
    stack.poll()
    stack.event_source().drain()
    exported = stack.sandbox.exported("local-erp")
    assert exported
    # Traede's datetimes have whole seconds, and this sandbox's clock stands a day back: every
    # mark lies before this instant without waiting for the next second (only the poller runs here).
    since = utc_text(datetime.now(UTC))
    code, out = run(capsys, "reexport", "--since", since, "--function", "poller", "--json")
    assert code == cli.EXIT_OK and out["queued"] == len(exported)
    assert stack.queue_depth(stack.queue_url) == len(exported)


def test_reexport_reports_a_failed_poller(lambda_endpoint: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    lambda_endpoint.sandbox.faults.error_rate = 1.0  # Traede keeps answering 5xx
    code = cli.main(["reexport", "--since", "2026-11-01T00:00:00Z", "--function", "poller"])
    assert code == cli.EXIT_FAILURE
    assert "PollFailed" in capsys.readouterr().err


def test_reexport_of_an_unknown_function_fails_cleanly(
    lambda_endpoint: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["reexport", "--since", "2026-11-01T00:00:00Z", "--function", "nope"])
    assert code == cli.EXIT_FAILURE
    assert "ResourceNotFoundException" in capsys.readouterr().err
