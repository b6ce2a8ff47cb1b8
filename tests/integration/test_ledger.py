"""The export ledger's conditional writes, against DynamoDB Local (AWS's own engine)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from traede_export import wiring
from traede_export.ledger import ExportLedger
from traede_export.models import OrderRef
from traede_local.local_stack import LocalStack, MakeStack

OLD, NEW = "2026-01-01 00:00:00", "2026-01-02 00:00:00"


def ledger_of(make_stack: MakeStack) -> ExportLedger:
    stack: LocalStack = make_stack(orders=1)
    return ExportLedger.on_dynamodb(stack.dynamodb, stack.table, "sys")


def test_claim_skips_versions_in_flight_and_takes_new_ones(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    ref = OrderRef(7, OLD)
    assert ledger.claim(ref, "run-1", 600)
    assert not ledger.claim(ref, "run-2", 600)  # in flight
    assert ledger.claim(OrderRef(7, NEW), "run-3", 600)  # a new version goes through
    assert not ledger.claim(ref, "run-4", 600)  # an older version does not
    assert ledger.claim(OrderRef(7, NEW), "run-5", 600, force=True)  # a re-export does
    assert ledger.claim(OrderRef(8, OLD), "run-6", -1)  # a lease that has already run out...
    assert ledger.claim(OrderRef(8, OLD), "run-7", 600)  # ...does not hold the next poll back


def test_released_lease_can_be_claimed_again_only_by_a_later_run(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    ref = OrderRef(7, OLD)
    assert ledger.claim(ref, "run-1", 600)
    assert not ledger.release(ref, "someone-else")
    assert ledger.release(ref, "run-1")
    assert ledger.claim(ref, "run-2", 600)


def test_delivery_and_mark_never_go_backwards(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    assert ledger.record_deliveries([(OrderRef(7, NEW), "key-new")]) == [True]
    assert ledger.record_deliveries([(OrderRef(7, OLD), "key-old")]) == [False]
    assert ledger.begin_marks([OrderRef(7, NEW)], 1) == [True]
    assert ledger.begin_marks([OrderRef(8, OLD)], 1) == [True]
    assert ledger.begin_marks([OrderRef(7, OLD)], 1) == [False]
    entry = ledger.get_many([7, 8])
    assert set(entry) == {7, 8}
    assert entry[7].delivered_key == "key-new"
    assert entry[7].delivered_version == entry[7].marked_version == OrderRef(7, NEW).version


def test_the_ledger_table_is_on_dynamodb_local(
    make_stack: MakeStack, dynamodb_endpoint: str, moto_endpoint: str
) -> None:
    stack: LocalStack = make_stack(orders=1)
    # boto3 sends DynamoDB (only) to AWS_ENDPOINT_URL_DYNAMODB, the rest to AWS_ENDPOINT_URL (moto),
    # in the handlers' wiring as in the stack's own clients.
    assert stack.dynamodb.meta.endpoint_url == wiring.aws_client("dynamodb").meta.endpoint_url == dynamodb_endpoint
    assert stack.sqs.meta.endpoint_url == wiring.aws_client("secretsmanager").meta.endpoint_url == moto_endpoint
    assert stack.table in stack.dynamodb.list_tables()["TableNames"]
    # The engine refuses what DynamoDB refuses (moto creates this table without complaint).
    with pytest.raises(ClientError, match="Table/index names must be between 3 and 255"):
        stack.dynamodb.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )


def test_concurrent_claims_of_one_version_have_exactly_one_winner(make_stack: MakeStack) -> None:
    # moto without a lock let two claims win in about 3 of 100 such races (it checks, then writes).
    ledger = ledger_of(make_stack)
    with ThreadPoolExecutor(8) as pool:
        for order_id in range(100):  # one race per order: 8 runs claim the same version at once
            ref = OrderRef(order_id, OLD)
            won = list(pool.map(lambda run, ref=ref: ledger.claim(ref, f"run-{run}", 600), range(8)))
            assert won.count(True) == 1, (order_id, won)


def test_claim_many_answers_as_one_claim_each_would(make_stack: MakeStack) -> None:
    # One transaction per 100: orders in flight, refused or repeated fail alone, the rest are claimed.
    ledger = ledger_of(make_stack)
    assert ledger.claim(OrderRef(3, OLD), "earlier", 600)  # in flight
    assert ledger.claim(OrderRef(5, NEW), "earlier", 600)  # a newer version in flight
    assert ledger.record_rejection(OrderRef(9, OLD), "400 bad order")  # refused: not claimed again
    refs = [OrderRef(i, OLD) for i in range(250)] + [OrderRef(4, OLD)]  # 4 twice: the second is in flight
    won = ledger.claim_many(refs, "run-1", 600)
    assert [r.order_id for r, ok in zip(refs, won, strict=True) if not ok] == [3, 5, 9, 4]
    assert ledger.get_many([0, 120, 249])[249].run_id == "run-1"
    assert ledger.claim_many([OrderRef(3, OLD), OrderRef(6, NEW)], "run-2", 600) == [False, True]
    assert ledger.claim_many([OrderRef(3, OLD), OrderRef(6, NEW)], "reexport", 600, force=True) == [True, True]


def test_overlapping_claim_many_claim_each_version_exactly_once(make_stack: MakeStack) -> None:
    # Two polls claim the same pages at once: transactions conflict and cancel, and each order
    # still goes to exactly one of them.
    ledger = ledger_of(make_stack)
    for page in range(5):
        refs = [OrderRef(page * 1000 + i, OLD) for i in range(60)]
        with ThreadPoolExecutor(3) as pool:
            won = list(pool.map(lambda run, refs=refs: ledger.claim_many(refs, f"run-{run}", 600), range(3)))
        assert [sum(column) for column in zip(*won, strict=True)] == [1] * 60, page


def test_begin_deliveries_keeps_each_orders_lease_and_never_goes_backwards(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    assert ledger.begin_deliveries([(OrderRef(1, OLD), "key-1-old")], 60) == [True]  # another copy is on its way
    assert ledger.record_deliveries([(OrderRef(2, NEW), "key-2-new")]) == [True]  # a newer version already delivered
    assert ledger.begin_deliveries([(OrderRef(3, OLD), "key-3")], 60) == [True]  # our own copy, retried
    assert ledger.begin_deliveries([(OrderRef(4, OLD), "key-4-reexport")], -1) == [True]  # a lease that ran out
    leases = [
        (OrderRef(1, OLD), "key-1-old:reexport"),  # same version, another key: waits
        (OrderRef(2, OLD), "key-2-old"),
        (OrderRef(3, OLD), "key-3"),
        (OrderRef(4, OLD), "key-4"),
        (OrderRef(5, OLD), "key-5"),
    ]
    assert ledger.begin_deliveries(leases, 60) == [False, False, True, True, True]
    entries = ledger.get_many(range(1, 6))
    assert entries[1].delivering_key == "key-1-old"
    assert entries[4].delivering_key == "key-4"
    assert ledger.end_delivery(OrderRef(4, OLD), "key-4")
    assert not ledger.end_delivery(OrderRef(1, OLD), "key-1-old:reexport")  # not ours to give back
    assert ledger.begin_deliveries([(OrderRef(4, OLD), "key-4-reexport")], 60) == [True]


def test_mark_records_never_go_backwards_nor_pass_a_newer_delivery(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    assert ledger.begin_marks([OrderRef(7, NEW)], 1) == [True]
    assert ledger.record_deliveries([(OrderRef(9, NEW), "key-9-new")]) == [True]  # delivered by another container
    refs = [OrderRef(i, OLD) for i in range(5, 12)]
    assert ledger.begin_marks(refs, 2) == [i not in (7, 9) for i in range(5, 12)]
    entries = ledger.get_many(range(5, 12))
    assert entries[7].marked_version == OrderRef(7, NEW).version
    assert entries[9].marked_version == ""
    assert {e.marked_version for i, e in entries.items() if i not in (7, 9)} == {OrderRef(5, OLD).version}


def test_undo_marks_restores_the_mark_before_and_only_its_own(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    assert ledger.begin_marks([OrderRef(1, OLD), OrderRef(3, OLD)], 100) == [True, True]
    before = ledger.get_many([1, 2, 3])
    assert ledger.begin_marks([OrderRef(1, NEW), OrderRef(2, NEW), OrderRef(3, NEW)], 200) == [True] * 3
    assert ledger.begin_marks([OrderRef(3, NEW)], 300) == [True]  # another copy marked order 3 since
    undo = [(OrderRef(i, NEW), before.get(i), 200) for i in (1, 2, 3)]
    assert ledger.undo_marks(undo) == [True, True, False]
    after = ledger.get_many([1, 2, 3])
    assert (after[1].marked_version, after[1].marked_ms) == (OrderRef(1, OLD).version, 100)
    assert (after[2].marked_version, after[2].marked_ms) == ("", 0)
    assert (after[3].marked_version, after[3].marked_ms) == (OrderRef(3, NEW).version, 300)


def test_a_mark_record_refuses_a_version_another_copy_marked_since_the_batch_read_it(make_stack: MakeStack) -> None:
    ledger = ledger_of(make_stack)
    assert ledger.begin_marks([OrderRef(1, OLD)], 100) == [True]  # marked before the batch read it
    assert ledger.begin_marks([OrderRef(1, OLD)], 150) == [True]  # another copy marked it since
    seen = {1: 100, 2: 0, 3: 0}
    assert ledger.begin_marks([OrderRef(1, OLD), OrderRef(2, OLD)], 200, seen) == [False, True]
    assert ledger.begin_marks([OrderRef(2, OLD)], 200, seen) == [True]  # its own instant: a second try
    assert ledger.finish_deliveries([(OrderRef(3, OLD), "key-3")], [OrderRef(1, OLD)], 300, {1: 150, 3: 0}) == [
        True,
        True,
    ]
    entries = ledger.get_many([1, 2, 3])
    assert (entries[1].marked_ms, entries[2].marked_ms, entries[3].marked_ms) == (300, 200, 300)
