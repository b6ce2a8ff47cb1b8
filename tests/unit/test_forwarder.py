"""Forwarder logic against in-memory fakes behind its ports, and the real ledger on an in-memory store."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from botocore.exceptions import EndpointConnectionError

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede, queued_copy
from helpers.ledger import SYSTEM, entry, seed, writes_setting
from traede_export.errors import CredentialsError, PartialWrite, TraedeError
from traede_export.events import UnresolvedLargeOrder
from traede_export.forward import BatchOutcome, Forwarder, RecordResult, partial_batch_response
from traede_export.ledger import Delivery, ExportLedger, LedgerEntry
from traede_export.models import Attr, InboundOrder, OrderRef, UnreadableMessage
from traede_export.queue import OutboundMessage, SendReport
from traede_export.target import DeliveryResult, Outcome
from traede_local.memory_store import Fault, MemoryStore

V1, V2 = "2026-01-05T10:00:00Z", "2026-01-06T10:00:00Z"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Parts:
    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.store = MemoryStore()
        self.clock = Clock()  # the ledger's: leases run out when a test moves it
        self.ledger = ExportLedger(self.store, SYSTEM, self.clock)
        self.target, self.traede, self.dlq = FakeTarget(), FakeTraede(), FakeDlq()
        self.forwarder = Forwarder(self.target, self.traede, self.ledger, self.dlq, SYSTEM, pool)

    def forward(self, *messages: InboundOrder | UnreadableMessage, time_left: float = 60.0) -> BatchOutcome:
        return self.forwarder.forward(list(messages), lambda: time_left)

    def delivered(self, order_id: int, updated_at: str) -> None:
        """A delivery recorded earlier (by another invocation)."""
        assert self.ledger.record_deliveries([(OrderRef(order_id, updated_at), copy(order_id, updated_at).key(SYSTEM))])

    def entry(self, order_id: int) -> LedgerEntry:
        return entry(self.ledger, order_id)


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit tier never opens a connection: a fake that forgot to stand in fails loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tests/unit must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def parts() -> Iterator[Parts]:
    with ThreadPoolExecutor(4) as pool:
        yield Parts(pool)


def copy(order_id: int, updated_at: str, message_id: str = "", run_id: str = "run-1") -> InboundOrder:
    message_id = message_id or f"m-{order_id}-{updated_at}"
    return queued_copy(updated_at, order_id=order_id, message_id=message_id, run_id=run_id)


def test_a_new_version_is_delivered_and_marked(parts: Parts) -> None:
    out = parts.forward(copy(1, V1))
    assert parts.target.posts == [copy(1, V1).key(SYSTEM)] and parts.traede.marked == [1]
    assert out.results["m-1-" + V1].ok and out.summary.delivered == out.summary.marked == 1
    assert parts.entry(1).marked_version == OrderRef(1, V1).version


def test_already_delivered_is_only_marked(parts: Parts) -> None:
    parts.delivered(1, V1)
    out = parts.forward(copy(1, V1))
    assert parts.target.posts == [] and parts.traede.marked == [1]
    assert out.summary.already_delivered == 1 and out.results["m-1-" + V1].ok


def test_already_marked_does_nothing(parts: Parts) -> None:
    parts.delivered(1, V1)
    assert parts.ledger.record_marks([OrderRef(1, V1)], "another-batch", {}) == [True]
    out = parts.forward(copy(1, V1, run_id="another-run"))
    assert parts.target.posts == [] and parts.traede.marked == []
    assert out.summary.already_marked == 1 and out.results["m-1-" + V1].ok


def test_an_older_copy_in_the_batch_is_superseded(parts: Parts) -> None:
    out = parts.forward(copy(1, V1), copy(1, V2))
    assert parts.target.posts == [copy(1, V2).key(SYSTEM)]
    assert out.summary.superseded == 1 and out.results["m-1-" + V1].ok


def test_a_version_older_than_the_delivered_one_is_superseded_not_marked(parts: Parts) -> None:
    parts.delivered(1, V2)
    out = parts.forward(copy(1, V1, run_id="old-run"))
    assert parts.target.posts == [] and parts.traede.marked == []
    assert out.summary.superseded == 1 and out.summary.went_backwards == 0


def test_a_mark_failure_fails_the_record_but_keeps_the_delivery(parts: Parts) -> None:
    parts.traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)
    out = parts.forward(copy(1, V1))
    assert not out.results["m-1-" + V1].ok and out.summary.mark_failures == 1
    assert parts.entry(1).delivered_version == OrderRef(1, V1).version
    parts.traede.error = None
    again = parts.forward(copy(1, V1))  # the redelivery only marks
    assert parts.target.posts == [copy(1, V1).key(SYSTEM)] and parts.traede.marked == [1]
    assert again.results["m-1-" + V1].ok


def test_a_refused_mark_parks_the_order(parts: Parts) -> None:
    parts.traede.error = TraedeError("mark-as-exported answered HTTP 404", 404)
    out = parts.forward(copy(1, V1))
    assert out.summary.mark_refused == 1 and [m.body for m in parts.dlq.sent] == [copy(1, V1).body]
    assert parts.entry(1).marked_version == ""  # its record of the mark is taken back


def test_a_mark_is_recorded_before_it_is_made_and_taken_back_when_it_fails(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def mark(notes: Sequence[tuple[int, str]]) -> None:
        seen.append(parts.entry(1).marked_version)  # recorded already, so a duplicate won't mark
        raise TraedeError("mark-as-exported answered HTTP 503", 503)

    v = OrderRef(1, V1).version  # delivered and marked; then a poll fetched it again: marked again
    before = LedgerEntry(
        1, v, 10, "poll-2", delivered_version=v, delivered_ms=2, marked_version=v, marked_ms=3, mark_token="t-3"
    )
    seed(parts.ledger, before)
    monkeypatch.setattr(parts.traede, "mark_as_exported", mark)
    out = parts.forward(copy(1, V1, run_id="poll-2"))
    assert seen == [OrderRef(1, V1).version] and out.summary.mark_failures == 1
    restored = parts.entry(1)
    assert (restored.marked_ms, restored.mark_token) == (3, "t-3")  # restored: the retry will mark


def test_a_newer_version_delivered_before_the_mark_record_stops_the_mark(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Order 1's delivery is recorded while order 2's POST is still out; meanwhile another container
    # delivers order 1's v2. The mark records, made once order 2 has answered, refuse v1's.
    deliver = parts.target.deliver

    def slow_second(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        result = deliver(body, idempotency_key, reexport_since)
        if json.loads(body)["id"] == 2:
            time.sleep(0.2)  # order 1's record (after at most the 10 ms linger) is written by now
            assert parts.entry(1).delivered_version == OrderRef(1, V1).version
            parts.delivered(1, V2)
        return result

    monkeypatch.setattr(parts.target, "deliver", slow_second)
    out = parts.forward(copy(1, V1), copy(2, V1))
    assert parts.traede.marked == [2]
    assert out.summary.superseded == 1 and out.results["m-1-" + V1].ok


def test_a_failed_take_back_of_a_mark_record_is_logged_and_the_record_fails(
    parts: Parts, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts.traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)

    def unavailable(*args: object) -> list[bool]:
        raise EndpointConnectionError(endpoint_url="http://ledger")

    monkeypatch.setattr(parts.ledger, "undo_marks", unavailable)
    out = parts.forward(copy(1, V1))
    assert not out.results["m-1-" + V1].ok and out.summary.mark_failures == 1
    assert "could not take back the record of a failed mark" in caplog.text


def test_not_started_when_no_time_is_left(parts: Parts) -> None:
    out = parts.forward(copy(1, V1), time_left=0.0)
    assert parts.target.posts == [] and parts.traede.marked == []
    assert out.summary.not_started == 1 and not out.results["m-1-" + V1].ok


def test_an_unreadable_record_is_parked_with_its_reason(parts: Parts) -> None:
    bad = UnreadableMessage("m-bad", "not json", "body is not JSON", 1)
    out = parts.forward(bad, copy(1, V1))
    assert out.results["m-bad"].ok and out.summary.invalid == 1
    (parked,) = parts.dlq.sent
    assert parked.body == "not json"
    assert "body is not JSON" in parked.attributes[Attr.FAILURE_REASON]["StringValue"]
    assert parts.traede.marked == [1]  # its batch mate goes on


def test_a_configuration_error_is_not_remembered_as_a_refusal(parts: Parts) -> None:
    parts.target.answers[1] = DeliveryResult(Outcome.REJECTED, "HTTP 401", 401)
    parts.target.answers[2] = DeliveryResult(Outcome.REJECTED, "HTTP 422", 422)
    parts.forward(copy(1, V1), copy(2, V1))
    assert parts.entry(1).rejected_version == ""
    assert parts.entry(2).rejected_version == OrderRef(2, V1).version


def test_a_record_without_a_result_counts_as_failed() -> None:
    outcome = BatchOutcome(results={"a": RecordResult(True, "ok"), "b": RecordResult(False, "no")})
    response = partial_batch_response(["a", "b", "c"], outcome)
    assert response == {"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}


def test_one_orders_failed_lease_write_fails_it_alone(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    # The batch's other leases took effect: they are used, not left to run out with the batch failed.
    real = parts.ledger.begin_deliveries

    def partly(leases: Sequence[tuple[OrderRef, str]], seconds: int, token: str) -> list[bool]:
        results: list[bool | None] = list(real([lease for lease in leases if lease[0].order_id != 2], seconds, token))
        results.insert(1, None)
        raise PartialWrite(results, RuntimeError("throttled"))

    monkeypatch.setattr(parts.ledger, "begin_deliveries", partly)
    out = parts.forward(copy(1, V1), copy(2, V1), copy(3, V1))
    assert parts.traede.marked == [1, 3]
    assert [m for m, r in out.results.items() if not r.ok] == [f"m-2-{V1}"]
    assert out.summary.failed == 1 and out.summary.delivered == 2


def test_a_large_order_whose_object_is_missing_fails_alone_and_comes_back_from_the_next_poll(parts: Parts) -> None:
    ref = OrderRef(2, V1)
    parts.ledger.record_rejection(ref, "HTTP 422")  # a redriven refusal whose object then expired
    gone = UnresolvedLargeOrder("m-gone", ref, "run-1", "large order object is missing", missing=True)
    outcome = parts.forwarder.forward([copy(1, V1), gone], lambda: 30.0)
    assert outcome.results["m-gone"].ok is False
    assert outcome.results[copy(1, V1).message_id].ok
    assert outcome.summary.large_missing == 1
    assert parts.entry(2).rejected_version == ""  # the next poll may claim it again
    assert parts.target.posts == [copy(1, V1).key(SYSTEM)]


def test_deliveries_that_finish_together_share_their_ledger_record(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten POSTs answered at the same instant: one record call for the ten, not ten.
    together = threading.Barrier(10)
    deliver = parts.target.deliver

    def at_once(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        together.wait(5)
        return deliver(body, idempotency_key, reexport_since)

    monkeypatch.setattr(parts.target, "deliver", at_once)
    with ThreadPoolExecutor(10) as pool:
        parts.forwarder = Forwarder(parts.target, parts.traede, parts.ledger, parts.dlq, SYSTEM, pool)
        out = parts.forward(*(copy(i, V1) for i in range(10)))
    assert out.summary.delivered == out.summary.marked == 10
    assert len(writes_setting(parts.ledger, "delivered_version")) == 1
    assert all(parts.entry(i).delivered_version == OrderRef(i, V1).version for i in range(10))


def test_a_failed_post_does_not_hold_up_its_batch_mates_records(parts: Parts) -> None:
    parts.target.answers[1] = DeliveryResult(Outcome.FAILED, "HTTP 503", 503)
    out = parts.forward(copy(1, V1), copy(2, V1))
    assert out.summary.failed == 1 and out.summary.delivered == 1
    assert len(writes_setting(parts.ledger, "delivered_version")) == 1 and parts.traede.marked == [2]


def test_a_failed_record_of_one_delivery_still_marks_it_and_its_batch_mates(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ERP accepted both; the ledger's joint write of records and marks took effect for order 1
    # and failed for order 2 (PartialWrite). Order 2 arrived, so its mark record is tried again
    # alone and it is marked.
    finish = parts.ledger.finish_deliveries

    def partly(
        deliveries: Sequence[Delivery], marks: Sequence[OrderRef], token: str, seen: Mapping[int, str]
    ) -> list[bool]:
        results: list[bool | None] = [
            None if d.ref.order_id == 2 else finish([d], [], token, seen)[0] for d in deliveries
        ]
        results += finish([], marks, token, seen)
        if None in results:
            raise PartialWrite(results, EndpointConnectionError(endpoint_url="http://ledger"))
        return [bool(r) for r in results]

    monkeypatch.setattr(parts.ledger, "finish_deliveries", partly)
    out = parts.forward(copy(1, V1), copy(2, V1))
    assert sorted(parts.traede.marked) == [1, 2]
    assert out.summary.delivered == out.summary.marked == 2
    assert parts.entry(2).delivered_version == ""  # its record did fail
    assert parts.entry(2).marked_version == OrderRef(2, V1).version  # the mark record's second try


def test_an_invocation_that_fails_takes_back_every_mark_record_of_its_batch(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Order 1's POST finds the credentials unreadable and fails the invocation at once; order 2's
    # POST answers later, and its last delivery record carries the mark records (order 2's and the
    # mark-only order 3's). None of those marks is made: no record of them may stay behind.
    deliver = parts.target.deliver

    def uneven(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        if json.loads(body)["id"] == 1:
            time.sleep(0.05)  # both POSTs are under way
            raise CredentialsError("the target's secret could not be read")
        time.sleep(0.2)
        return deliver(body, idempotency_key, reexport_since)

    monkeypatch.setattr(parts.target, "deliver", uneven)
    parts.delivered(3, V1)  # delivered, not yet marked
    with pytest.raises(CredentialsError):
        parts.forward(copy(1, V1), copy(2, V1), copy(3, V1))
    time.sleep(0.3)  # anything still running in the pool has finished
    assert parts.traede.marked == []
    assert {parts.entry(i).marked_version for i in (2, 3)} == {""}
    assert parts.entry(1).delivering_token == ""  # its lease went back with the failure: the retry need not wait


def test_a_mark_call_that_fails_the_invocation_takes_its_mark_records_back(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Traede's credentials cannot be read when marking: the invocation fails and the batch comes
    # back. Its mark records must not stay, or the redelivery would take the orders as marked.
    def unreadable(notes: Sequence[tuple[int, str]]) -> None:
        raise CredentialsError("Traede's secret could not be read")

    monkeypatch.setattr(parts.traede, "mark_as_exported", unreadable)
    with pytest.raises(CredentialsError):
        parts.forward(copy(1, V1), copy(2, V1))
    assert {parts.entry(i).marked_version for i in (1, 2)} == {""}
    assert all(parts.entry(i).delivered_version for i in (1, 2))  # they did arrive


def faults(store: MemoryStore, *plan: tuple[str, Fault]) -> None:
    """The store's next calls whose operation or update mentions each name go as planned, in order."""
    todo = list(plan)

    def hook(operation: str, updates: Sequence[object]) -> Fault:
        if todo and (todo[0][0] == operation or any(f"{todo[0][0]} = " in u.expression for u in updates)):  # type: ignore[attr-defined]
            return todo.pop(0)[1]
        return Fault.NONE

    store.fault = hook


def test_a_mark_record_whose_answer_was_lost_is_read_back_and_the_order_marked(parts: Parts) -> None:
    parts.delivered(1, V1)
    faults(parts.store, ("mark_token", Fault.LOST))
    out = parts.forward(copy(1, V1))
    assert out.results["m-1-" + V1].ok and parts.traede.marked == [1]


def test_a_mark_record_written_though_its_call_failed_is_taken_back(parts: Parts) -> None:
    # The write took effect but its answer was lost (a read timeout after botocore's retries), and
    # reading it back failed too: the order is not marked, so the record must not stay to make
    # the retry skip it.
    parts.delivered(1, V1)
    faults(parts.store, ("mark_token", Fault.LOST), ("BatchGetItem", Fault.FAIL))
    out = parts.forward(copy(1, V1))
    assert not out.results["m-1-" + V1].ok and parts.traede.marked == []
    assert parts.entry(1).marked_version == ""
    parts.forward(copy(1, V1))
    assert parts.traede.marked == [1]


def test_a_joint_record_written_though_both_its_tries_failed_is_taken_back(parts: Parts) -> None:
    # The last delivery record with its mark took effect, answer lost and not readable; the mark
    # record's second try fails outright, and reading it back fails again. The record may not stay behind.
    faults(
        parts.store,
        ("mark_token", Fault.LOST),
        ("BatchGetItem", Fault.FAIL),
        ("mark_token", Fault.FAIL),
        ("BatchGetItem", Fault.FAIL),
    )
    out = parts.forward(copy(1, V1))
    assert not out.results["m-1-" + V1].ok and parts.traede.marked == []
    assert parts.entry(1).marked_version == ""
    parts.forward(copy(1, V1))
    assert parts.traede.marked == [1]


def test_a_failed_duplicate_mark_does_not_take_back_the_mark_another_copy_made(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two copies of one delivered version, in two containers at once (an SQS duplicate, a replay).
    # Both read the ledger before either mark record. Copy A records and marks; copy B's record
    # then overwrites A's, B's mark fails and B takes its record back, erasing A's. B's retry
    # marks again, and would swallow an edit made in Traede since A's mark.
    parts.delivered(1, V1)
    other_traede = FakeTraede()
    read = parts.ledger.get_many

    def read_then_other_copy_marks(order_ids: Iterable[int]) -> dict[int, LedgerEntry]:
        entries = read(order_ids)
        monkeypatch.setattr(parts.ledger, "get_many", read)  # once: container A reads as usual
        with ThreadPoolExecutor(2) as pool:  # container A, sharing the ledger, marks its copy now
            Forwarder(parts.target, other_traede, parts.ledger, parts.dlq, SYSTEM, pool).forward(
                [copy(1, V1, message_id="a-copy")], lambda: 60.0
            )
        return entries

    monkeypatch.setattr(parts.ledger, "get_many", read_then_other_copy_marks)
    parts.traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)
    parts.forward(copy(1, V1))  # copy B
    assert other_traede.marked == [1]
    parts.traede.error = None
    again = parts.forward(copy(1, V1))  # B's retry
    assert parts.traede.marked == [] and again.summary.already_marked == 1


def test_no_mark_is_started_past_the_deadline_and_its_record_is_taken_back(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The POSTs took the invocation up to its deadline: marking now could be cut off by Lambda's
    # timeout, leaving mark records for marks never made. The orders come back and are only marked.
    clock = {"left": 60.0}
    deliver = parts.target.deliver

    def slow(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        clock["left"] = 0.0
        return deliver(body, idempotency_key, reexport_since)

    monkeypatch.setattr(parts.target, "deliver", slow)
    out = parts.forwarder.forward([copy(1, V1)], lambda: clock["left"])
    assert parts.traede.marked == [] and not out.results["m-1-" + V1].ok
    assert parts.entry(1).delivered_version and parts.entry(1).marked_version == ""
    monkeypatch.undo()
    again = parts.forward(copy(1, V1))  # the redelivery only marks
    assert parts.traede.marked == [1] and parts.target.posts == [copy(1, V1).key(SYSTEM)]
    assert again.results["m-1-" + V1].ok


class SqsCharacterDlq(FakeDlq):
    """Refuses what SQS refuses: attribute values with characters outside #x9 | #xA | #xD |
    #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (SQS's documented message character set)."""

    @staticmethod
    def _allowed(c: str) -> bool:
        n = ord(c)
        return n in (0x9, 0xA, 0xD) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000

    def send(self, messages: Sequence[OutboundMessage]) -> SendReport:
        bad = {
            m.entry_id
            for m in messages
            if not all(self._allowed(c) for a in m.attributes.values() for c in a.get("StringValue", ""))
        }
        self.sent.extend(m for m in messages if m.entry_id not in bad)
        return SendReport(
            sent=[m.entry_id for m in messages if m.entry_id not in bad],
            failed={i: "InvalidParameterValue: invalid characters" for i in bad},
        )


def test_a_refusal_whose_erp_body_has_control_characters_is_still_parked_with_its_reason(parts: Parts) -> None:
    """The ERP's error body is quoted in `failure_reason` (TargetClient: `HTTP 400: <text[:200]>`); a
    binary or ANSI-coloured body brings characters SQS refuses in an attribute. The parking failed,
    the order was POSTed again on each of 5 receives, and reached the DLQ through the redrive policy
    without any failure_reason."""
    parts.forwarder._dlq = parts.dlq = SqsCharacterDlq()
    parts.target.answers[1] = DeliveryResult(Outcome.REJECTED, "HTTP 400: \x1b[31mbad\x1b[0m sku\x00\x01", 400)
    out = parts.forward(copy(1, V1))
    assert out.results["m-1-" + V1].ok, out.results["m-1-" + V1].reason
    (parked,) = parts.dlq.sent
    reason = parked.attributes[Attr.FAILURE_REASON]["StringValue"]
    assert "HTTP 400" in reason and "bad" in reason and "sku" in reason


def test_a_copy_older_than_a_claimed_version_is_neither_posted_nor_marked(parts: Parts) -> None:
    assert parts.ledger.claim(OrderRef(1, V2), "poll-2", 600)  # v2 is on the queue; nothing delivered yet
    out = parts.forward(copy(1, V1, run_id="poll-1"))
    assert parts.target.posts == [] and parts.traede.marked == []
    assert out.summary.superseded == 1 and out.results["m-1-" + V1].ok


def test_a_delivery_overtaken_by_a_newer_one_during_its_post_is_a_stale_delivery(
    parts: Parts, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    deliver = parts.target.deliver

    def overtaken(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        # The v1 POST outlives its lease (which the deadline's clamp is there to prevent); another
        # container then takes the lease for v2 and delivers it while this one still runs.
        parts.clock.now += 3600
        v2 = (OrderRef(1, V2), copy(1, V2).key(SYSTEM))
        assert parts.ledger.begin_deliveries([v2], 60, "another-batch") == [True]
        assert parts.ledger.record_deliveries([v2], "another-batch") == [True]
        return deliver(body, idempotency_key, reexport_since)

    monkeypatch.setattr(parts.target, "deliver", overtaken)
    out = parts.forward(copy(1, V1))
    assert out.summary.stale == 1 and out.summary.delivered == 0 and parts.traede.marked == []
    assert out.results["m-1-" + V1].ok and "StaleDeliveries" in out.results["m-1-" + V1].reason
    assert "an older version landed after a newer one" in caplog.text


def test_a_reexport_post_recorded_on_its_own_is_no_stale_delivery(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Order 1 was delivered before the re-export's instant: its re-export copy is POSTed again and its
    # record (made alone, while order 2's slow POST is still out) repeats the same version.
    parts.delivered(1, V1)
    deliver = parts.target.deliver

    def slow_second(body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        if json.loads(body)["id"] == 2:
            time.sleep(0.2)
        return deliver(body, idempotency_key, reexport_since)

    monkeypatch.setattr(parts.target, "deliver", slow_second)
    reexport = replace(copy(1, V1), reexport_since="2099-01-01T00:00:00Z")
    out = parts.forward(reexport, copy(2, V1))
    assert len(parts.target.posts) == 2 and out.summary.stale == 0
    assert sorted(parts.traede.marked) == [1, 2]


# Schedules the simulation (tests/helpers/simulation.py) found, shrunk, kept as regressions.


def test_an_older_copy_after_a_post_whose_answer_was_lost_is_not_posted(parts: Parts) -> None:
    # v2's POST reached the ERP but its answer was lost; its lease ended. A replayed v1 then found
    # nothing newer in the ledger and was POSTed: the ERP went back to older content.
    parts.target.answers[1] = DeliveryResult(Outcome.FAILED, "no answer from receiving system: ReadTimeout")
    parts.forward(copy(1, V2))
    del parts.target.answers[1]
    out = parts.forward(copy(1, V1, run_id="a-replay"))
    assert parts.target.posts == [copy(1, V2).key(SYSTEM)]
    assert out.summary.superseded == 1 and out.results["m-1-" + V1].ok


def test_a_copy_planned_on_a_stale_read_does_not_post_what_another_copy_recorded(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two copies of one version (an SQS duplicate): B read the ledger, then A delivered, recorded
    # and marked it, then B took the lease A had given back and POSTed again.
    read = parts.ledger.get_many
    other = FakeTraede()

    def read_then_other_copy_delivers(order_ids: Iterable[int]) -> dict[int, LedgerEntry]:
        entries = read(order_ids)
        monkeypatch.setattr(parts.ledger, "get_many", read)
        with ThreadPoolExecutor(2) as pool:
            Forwarder(parts.target, other, parts.ledger, parts.dlq, SYSTEM, pool).forward(
                [copy(1, V1, message_id="a-copy")], lambda: 60.0
            )
        return entries

    monkeypatch.setattr(parts.ledger, "get_many", read_then_other_copy_delivers)
    out = parts.forward(copy(1, V1))  # copy B
    assert parts.target.posts == [copy(1, V1).key(SYSTEM)] and other.marked == [1]
    assert out.summary.deferred == 1 and not out.results["m-1-" + V1].ok  # its redelivery finds it marked
    again = parts.forward(copy(1, V1))
    assert again.summary.already_marked == 1 and parts.target.posts == [copy(1, V1).key(SYSTEM)]
