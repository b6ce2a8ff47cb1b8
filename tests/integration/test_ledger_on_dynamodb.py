"""The export ledger on DynamoDB Local (AWS's own engine): races, transactions, and the same answers
as the in-memory store that the unit tier runs the protocol's rules on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traede_export import wiring
from traede_export.ledger import ExportLedger
from traede_export.ledger_store import DynamoStore
from traede_export.models import OrderRef
from traede_export.protocol import LedgerEntry
from traede_local.local_stack import LocalOptions, LocalStack, MakeStack
from traede_local.memory_store import MemoryStore

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


def test_the_ledger_table_is_on_dynamodb_local(
    make_stack: MakeStack, dynamodb_endpoint: str, moto_endpoint: str
) -> None:
    stack: LocalStack = make_stack(orders=1)
    # boto3 sends DynamoDB (only) to AWS_ENDPOINT_URL_DYNAMODB, the rest to AWS_ENDPOINT_URL (moto),
    # in the handlers' wiring as in the stack's own clients.
    assert stack.dynamodb.meta.endpoint_url == wiring.aws_client("dynamodb").meta.endpoint_url == dynamodb_endpoint
    assert stack.sqs.meta.endpoint_url == wiring.aws_client("secretsmanager").meta.endpoint_url == moto_endpoint
    assert stack.dynamodb.describe_table(TableName=stack.table)["Table"]["TableStatus"] == "ACTIVE"
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


# --------------------------------------------- the same writes on DynamoDB Local and in memory

V = [OrderRef(1, f"2026-01-0{d} 00:00:00").version for d in (1, 2, 3)]
refs = st.builds(OrderRef, st.sampled_from([1, 2]), st.sampled_from([f"2026-01-0{d} 00:00:00" for d in (1, 2, 3)]))
tokens = st.sampled_from(["a", "b", "c"])
operations = st.one_of(
    st.tuples(st.just("claim"), refs, st.booleans()),
    st.tuples(st.just("release"), refs, st.sampled_from(["run-0", "run-1"])),
    st.tuples(st.just("begin"), refs, tokens),
    st.tuples(st.just("end"), refs, tokens),
    st.tuples(st.just("deliver"), refs, tokens),
    st.tuples(st.just("reject"), refs, tokens),
    st.tuples(st.just("forget"), refs, tokens),
    st.tuples(st.just("mark"), refs, tokens),
    st.tuples(st.just("deliver_and_mark"), refs, tokens),
    st.tuples(st.just("undo"), refs, tokens),
    st.tuples(st.just("tick"), st.just(OrderRef(1, "2026-01-01 00:00:00")), st.sampled_from(["1", "700"])),
)


class Both:
    """One ledger on DynamoDB Local and one in memory, on one clock."""

    def __init__(self, stack: LocalStack, system_id: str) -> None:
        self.now = 1_800_000_000.0
        self.ledgers = [
            ExportLedger(DynamoStore(stack.dynamodb, stack.table), system_id, lambda: self.now),
            ExportLedger(MemoryStore(), system_id, lambda: self.now),
        ]
        self.run = 0

    def apply(self, ledger: ExportLedger, op: tuple[str, OrderRef, Any]) -> Any:
        name, ref, arg = op
        entries = ledger.get_many([ref.order_id])
        before = entries.get(ref.order_id)
        seen = {ref.order_id: before.mark_token_of(ref.version)} if before else {}
        match name:
            case "claim":
                return ledger.claim(ref, f"run-{self.run}", 600, force=arg)
            case "release":
                return ledger.release(ref, arg)
            case "begin":
                return ledger.begin_deliveries([(ref, "key")], 60, arg)
            case "end":
                return ledger.end_delivery(ref, arg)
            case "deliver":
                return ledger.record_deliveries([(ref, f"key-{arg}")])
            case "reject":
                return ledger.record_rejection(ref, f"refused by {arg}")
            case "forget":
                return ledger.forget_rejection(ref)
            case "mark":
                return ledger.record_marks([ref], arg, seen)
            case "deliver_and_mark":
                return ledger.finish_deliveries([(ref, f"key-{arg}")], [], arg, seen)
            case "undo":
                return ledger.undo_marks([(ref, before)], arg)
        raise AssertionError(name)


def _comparable(entry: LedgerEntry | None) -> LedgerEntry | None:
    return None if entry is None else replace(entry, claim_token="")  # claim tokens are random


@pytest.fixture(scope="module")
def shared_stack(
    moto_endpoint: str, dynamodb_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    stack = LocalStack(
        LocalOptions(orders=0, store_dir=tmp_path_factory.mktemp("received")),
        moto_endpoint=moto_endpoint,
        dynamodb_endpoint=dynamodb_endpoint,
    ).start()
    yield stack
    stack.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operations, min_size=1, max_size=25))
def test_dynamodb_local_and_the_memory_store_give_the_same_answers(
    shared_stack: LocalStack, ops: list[tuple[str, OrderRef, Any]]
) -> None:
    both = Both(shared_stack, f"diff-{uuid.uuid4().hex[:8]}")
    for op in ops:
        if op[0] == "tick":
            both.now += int(op[2])
            continue
        if op[0] == "claim":
            both.run += 1
        answers = [both.apply(ledger, op) for ledger in both.ledgers]
        assert answers[0] == answers[1], op
        entries = [_comparable(ledger.get_many([1, 2]).get(op[1].order_id)) for ledger in both.ledgers]
        assert entries[0] == entries[1], op
