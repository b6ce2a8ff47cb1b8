"""The benchmark's arithmetic, its call hooks and the cost model (the benchmark itself runs with `make bench`)."""

from __future__ import annotations

import math

import boto3
import pytest
from botocore.stub import Stubber

from traede_bench import cost
from traede_bench.scenarios import floor_ratio, ideal_mark_calls, seeded_for
from traede_bench.timing import (
    DYNAMODB,
    OWN,
    RECEIVER,
    SQS_OTHER,
    TRAEDE,
    CallCounts,
    Recorder,
    Span,
    attach,
    breakdown,
    consumed_units,
    sqs_billed_requests,
    union_seconds,
)
from traede_local.seed import seed_orders


@pytest.mark.parametrize("pending", [1, 7, 8, 9, 100, 1000, 1234])
def test_seeded_for_gives_exactly_that_many_exportable_orders(pending: int) -> None:
    orders = seed_orders(seeded_for(pending))
    exportable = [o for o in orders if o["status"] not in ("draft", "closed")]
    assert len(exportable) == pending
    assert orders[-1]["status"] not in ("draft", "closed")  # the smallest such seed count


def test_ideal_mark_calls_and_floor_ratio() -> None:
    assert ideal_mark_calls(100) == 10
    assert ideal_mark_calls(101) == 11
    assert floor_ratio(10, 0.1, 0.125) == pytest.approx(8.0)
    assert math.isinf(floor_ratio(10, 0.1, 0.0))


def test_union_seconds_counts_overlaps_once() -> None:
    assert union_seconds([]) == 0
    assert union_seconds([(0, 1), (0.5, 2), (3, 4)]) == pytest.approx(3.0)
    assert union_seconds([(0, 10), (1, 2), (3, 4)]) == pytest.approx(10.0)


def test_breakdown_adds_up_to_the_window_and_splits_overlaps_evenly() -> None:
    spans = [
        Span(RECEIVER, "POST", 1.0, 3.0),
        Span(RECEIVER, "POST", 1.5, 2.5),  # concurrent POSTs count once
        Span(DYNAMODB, "dynamodb.UpdateItem", 2.0, 4.0),  # overlaps the POSTs for 1 s: half each
        Span(TRAEDE, "POST mark", 9.0, 12.0),  # runs past the window: clipped
    ]
    parts = breakdown(spans, 0.0, 10.0)
    assert sum(parts.values()) == pytest.approx(10.0)
    assert parts[RECEIVER] == pytest.approx(1.5)
    assert parts[DYNAMODB] == pytest.approx(1.5)
    assert parts[TRAEDE] == pytest.approx(1.0)
    assert parts[OWN] == pytest.approx(6.0)
    assert breakdown([], 0.0, 2.0)[OWN] == pytest.approx(2.0)


def test_call_counts_add_units_and_sqs_billed_requests() -> None:
    counts = CallCounts.of(
        [
            Span(DYNAMODB, "dynamodb.UpdateItem", 0, 1, write_units=1),
            Span(DYNAMODB, "dynamodb.BatchGetItem", 0, 1, read_units=5),
            Span(SQS_OTHER, "sqs.SendMessageBatch", 0, 1, billed_requests=2),
            Span(SQS_OTHER, "sqs.SendMessageBatch", 0, 1, billed_requests=1),
        ]
    )
    assert counts.by_operation == {"dynamodb.BatchGetItem": 1, "dynamodb.UpdateItem": 1, "sqs.SendMessageBatch": 2}
    assert (counts.read_units, counts.write_units, counts.sqs_billed_requests) == (5, 1, 3)
    assert counts.calls(lambda op: op.startswith("dynamodb.")) == 2


def test_units_and_billed_requests_as_aws_counts_them() -> None:
    assert consumed_units("UpdateItem", {"ConsumedCapacity": {"CapacityUnits": 1.0}}, failed=False) == (0, 1)
    assert consumed_units("UpdateItem", {}, failed=True) == (0, 1)  # a refused condition still costs a write
    # 2 units per transaction item, whatever DynamoDB Local reports
    assert consumed_units("TransactWriteItems", {"ConsumedCapacity": [{"CapacityUnits": 2.0}]}, False, 5) == (0, 10)
    assert consumed_units(
        "BatchGetItem", {"ConsumedCapacity": [{"CapacityUnits": 2}, {"CapacityUnits": 3}]}, False
    ) == (
        5,
        0,
    )
    small = [{"Id": str(i), "MessageBody": "x" * 1000} for i in range(10)]
    big = [{"Id": str(i), "MessageBody": "x" * 20_000} for i in range(10)]
    assert sqs_billed_requests("SendMessageBatch", {"Entries": small}) == 1
    assert sqs_billed_requests("SendMessageBatch", {"Entries": big}) == 4  # 200,000 bytes: four 64 KiB chunks
    assert sqs_billed_requests("ReceiveMessage", {}) == 1


def test_attached_hooks_time_a_call_and_ask_dynamodb_for_its_units() -> None:
    recorder = Recorder()
    client = attach(
        boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"), recorder
    )
    params = {"TableName": "ledger", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = :v"}
    with Stubber(client) as stub:
        stub.add_response(
            "update_item",
            {"ConsumedCapacity": {"TableName": "ledger", "CapacityUnits": 1.0}},
            expected_params={**params, "ReturnConsumedCapacity": "TOTAL"},  # added by the hook
        )
        client.update_item(**params)
    [span] = recorder.spans
    assert (span.category, span.operation, span.write_units) == (DYNAMODB, "dynamodb.UpdateItem", 1.0)
    assert span.ended >= span.started


def test_recorder_classifies_http_by_host() -> None:
    recorder = Recorder(hosts={"127.0.0.1:8001": TRAEDE, "127.0.0.1:8002": RECEIVER})
    assert recorder.classify("http://127.0.0.1:8001/v10/production-orders/export?x=1") == TRAEDE
    assert recorder.classify("http://127.0.0.1:8002/orders") == RECEIVER
    assert recorder.classify("http://127.0.0.1:9/") == "other http"


def test_cost_reads_the_template_and_names_the_biggest_line() -> None:
    stack = cost.Stack.read()
    assert stack.architecture == "arm64"
    assert stack.alarms >= 1 and stack.dashboards == 1 and stack.custom_metrics >= 10
    data = cost.report(dict(cost.DEFAULTS), "defaults", stack)
    for volume, lines in data["monthly_usd"].items():
        assert all(v >= 0 for v in lines.values())
        assert data["biggest_line"][volume] == max(lines, key=lambda k: lines[k])
    totals = [sum(data["monthly_usd"][v].values()) for v in cost.VOLUMES]
    assert totals == sorted(totals)  # more orders never cost less
    assert "us-east-1" in cost.render(data)


def test_backlog_names_the_setting_that_bounds_it() -> None:
    stack = cost.Stack.read()
    slow_forwarder = {**cost.DEFAULTS, "forwarder_seconds": 1.0}  # 10 s a batch
    assert cost.backlog(slow_forwarder, stack)["bounded_by"].startswith("ForwarderMaxConcurrency")
    slow_poll = {**cost.DEFAULTS, "poll_seconds": 0.5}  # 460 orders a run
    figures = cost.backlog(slow_poll, stack)
    assert "Timeout" in figures["bounded_by"]
    assert figures["poll_runs"] == math.ceil(100_000 / figures["orders_per_poll_run"])
