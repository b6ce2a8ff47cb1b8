"""The ERP's own reference for an accepted order (TARGET_REFERENCE): read from its 2xx answer, kept
in the ledger with the delivered key, and shown in the note of the order's mark in Traede, also when
the mark comes later, from another invocation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.fakes import FakeDlq, FakeTarget, FakeTraede, queued_copy
from helpers.ledger import SYSTEM, entry, memory_ledger
from traede_export.errors import MappingError, TraedeError
from traede_export.forward import Forwarder
from traede_export.ledger import Delivery, ExportLedger
from traede_export.models import InboundOrder, OrderRef
from traede_export.redact import register
from traede_export.target import (
    MAX_REFERENCE_CHARS,
    DeliveryResult,
    Outcome,
    ReferenceExpression,
    answer_document,
    reference_text,
)

V1, V2 = "2026-01-05T10:00:00Z", "2026-01-06T10:00:00Z"
LOCATION = "https://erp.example.com/api/purchase-orders/PO-4711"


def answer(body: object, **headers: str) -> dict[str, object]:
    text = body if isinstance(body, str) else json.dumps(body)
    return answer_document(201, headers, text)


# ------------------------------------------------------------------------------ the expression


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("body.id", "PO-4711"),
        ('"PO-" & $string(body.received)', "PO-4711"),
        ('$substringAfter(headers.location, "/purchase-orders/")', "PO-4711"),
        ("body.received", "4711"),  # a number, as text
        ("body.received / 1", "4711"),  # JSONata's arithmetic may give 4711.0: the ERP meant 4711
        ("status", "201"),
    ],
)
def test_the_reference_is_read_from_the_body_or_the_headers(source: str, found: str) -> None:
    got = ReferenceExpression(source).evaluate(answer({"id": "PO-4711", "received": 4711}, Location=LOCATION))
    assert (got.text, got.problem) == (found, "")


def test_the_headers_are_read_by_their_lower_case_name_and_a_body_that_is_not_json_as_its_text() -> None:
    doc = answer_document(200, {"Location": LOCATION, "X-Erp-Doc": "D-9"}, "stored as D-9")
    assert doc == {"status": 200, "headers": {"location": LOCATION, "x-erp-doc": "D-9"}, "body": "stored as D-9"}
    assert ReferenceExpression('headers."x-erp-doc"').evaluate(doc).text == "D-9"
    assert ReferenceExpression("body").evaluate(doc).text == "stored as D-9"


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("body.id", "yielded nothing"),  # this answer has no id
        ("null", "yielded nothing"),
        ('"   "', "yielded nothing"),
        ('body.number ? body.number : $error("no document number")', "no document number"),
        ("$number(body)", "TARGET_REFERENCE failed"),  # an object is no number
    ],
)
def test_an_answer_without_a_reference_is_a_reason_never_an_error(source: str, why: str) -> None:
    got = ReferenceExpression(source).evaluate(answer({"ok": True}))
    assert got.text is None and why in got.problem


def test_the_reference_is_text_without_control_characters_cut_to_a_sensible_length() -> None:
    assert reference_text("PO-\x1b[31m47\r\n11\x00") == "PO-[31m4711"
    assert reference_text(["A", 1]) == '["A",1]' and reference_text(True) == "true"
    assert reference_text([]) is None and reference_text(None) is None
    assert len(reference_text("X" * 5000) or "") == MAX_REFERENCE_CHARS


def test_a_credential_the_erp_echoes_never_becomes_a_reference() -> None:
    register("unit-erp-key-5c5c5c")
    got = ReferenceExpression("body.id").evaluate(answer({"id": "key unit-erp-key-5c5c5c accepted"}))
    assert got.text == "key *** accepted"
    # The sink masks too, whoever built the result.
    assert DeliveryResult(Outcome.DELIVERED, "HTTP 201", 201, "unit-erp-key-5c5c5c").reference == "***"


def test_an_expression_that_does_not_compile_fails_the_cold_start() -> None:
    with pytest.raises(MappingError, match=r"TARGET_REFERENCE does not compile: S0203"):
        ReferenceExpression.load_checked("body.(")


def test_an_expression_calling_a_function_that_does_not_exist_fails_the_cold_start() -> None:
    # JSONata finds an unknown function only when it runs: the cold start runs it on a sample answer.
    with pytest.raises(MappingError, match=r"TARGET_REFERENCE failed: T1006.*sample answer"):
        ReferenceExpression.load_checked('$substringafter(headers.location, "/")')


def test_an_expression_whose_errors_depend_on_the_answer_passes_the_cold_start() -> None:
    expression = ReferenceExpression.load_checked('$error("no reference in " & $string(status))')
    assert expression is not None and ReferenceExpression.load_checked("") is None


# ------------------------------------------------------------------------------ the forwarder


class Parts:
    def __init__(self, pool: ThreadPoolExecutor, ledger: ExportLedger | None = None) -> None:
        self.ledger = ledger or memory_ledger()
        self.target, self.traede, self.dlq = FakeTarget(), FakeTraede(), FakeDlq()
        self.forwarder = Forwarder(self.target, self.traede, self.ledger, self.dlq, SYSTEM, pool)
        self.reference_missing = 0

    def another_invocation(self, pool: ThreadPoolExecutor) -> Parts:
        """Another container: its own clients, the same ledger."""
        return Parts(pool, self.ledger)

    def forward(self, *messages: InboundOrder) -> int:
        """Forward a batch; the number of its records that failed (they come back)."""
        out = self.forwarder.forward(list(messages), lambda: 60.0)
        self.reference_missing = out.summary.reference_missing
        return sum(not r.ok for r in out.results.values())


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def copy(order_id: int, updated_at: str, reexport_since: str | None = None) -> InboundOrder:
    message_id = f"m-{order_id}-{updated_at}-{reexport_since}"
    return queued_copy(updated_at, order_id=order_id, message_id=message_id, reexport_since=reexport_since)


def accepted(reference: str | None, problem: str = "") -> DeliveryResult:
    return DeliveryResult(Outcome.DELIVERED, "HTTP 201", 201, reference, problem)


def test_the_reference_is_kept_with_the_delivery_and_shown_in_the_marks_note(pool: ThreadPoolExecutor) -> None:
    parts = Parts(pool)
    parts.target.answers[1] = accepted("PO-4711")
    assert parts.forward(copy(1, V1)) == 0
    key = copy(1, V1).key(SYSTEM)
    assert parts.traede.notes[1] == f"ERP reference PO-4711 \u00b7 Idempotency-Key {key}"
    found = entry(parts.ledger, 1)
    assert (found.delivered_key, found.delivered_reference) == (key, "PO-4711")


def test_a_mark_that_failed_is_retried_by_another_invocation_with_the_reference_from_the_ledger(
    pool: ThreadPoolExecutor,
) -> None:
    first = Parts(pool)
    first.target.answers[1] = accepted("PO-4711")
    first.traede.error = TraedeError("mark-as-exported answered HTTP 503", 503)
    assert first.forward(copy(1, V1)) == 1  # delivered, not marked: the record comes back
    second = first.another_invocation(pool)  # its ERP would answer without a reference: it is not asked
    assert second.forward(copy(1, V1)) == 0
    assert second.target.posts == [] and second.traede.marked == [1]
    assert second.traede.notes[1].startswith("ERP reference PO-4711 \u00b7 Idempotency-Key traede:erp:1:")


def test_an_expression_that_fails_for_one_answer_never_fails_the_delivery(pool: ThreadPoolExecutor) -> None:
    parts = Parts(pool)
    parts.target.answers[1] = accepted("PO-1")
    parts.target.answers[2] = accepted(None, "TARGET_REFERENCE failed: D3137: no document number")
    assert parts.forward(copy(1, V1), copy(2, V1)) == 0
    assert sorted(parts.traede.marked) == [1, 2] and parts.reference_missing == 1
    assert parts.traede.notes[2] == f"Delivered by traede-export, Idempotency-Key {copy(2, V1).key(SYSTEM)}"
    assert parts.traede.notes[1].startswith("ERP reference PO-1 ")
    assert entry(parts.ledger, 2).delivered_reference == ""


def test_a_newer_delivery_without_a_reference_does_not_keep_the_older_ones(pool: ThreadPoolExecutor) -> None:
    parts = Parts(pool)
    parts.target.answers[1] = accepted("PO-OLD")
    assert parts.forward(copy(1, V1)) == 0
    parts.target.answers[1] = accepted(None, "TARGET_REFERENCE yielded nothing for this answer")
    assert parts.forward(copy(1, V2)) == 0
    found = entry(parts.ledger, 1)
    assert found.delivered_version == OrderRef(1, V2).version and found.delivered_reference == ""
    assert "PO-OLD" not in parts.traede.notes[1]


def test_a_mark_riding_on_an_earlier_delivery_names_that_delivery(pool: ThreadPoolExecutor) -> None:
    # A re-export copy of a version delivered after the re-export's instant only marks: the ERP holds
    # the version under the scheduled key, with that delivery's reference.
    parts = Parts(pool)
    ref = OrderRef(1, V1)
    assert parts.ledger.record_deliveries([Delivery(ref, copy(1, V1).key(SYSTEM), "PO-77")]) == [True]
    assert parts.forward(copy(1, V1, reexport_since="2020-01-01T00:00:00Z")) == 0
    assert parts.target.posts == []
    assert parts.traede.notes[1] == f"ERP reference PO-77 \u00b7 Idempotency-Key {copy(1, V1).key(SYSTEM)}"


def test_the_reference_is_written_by_the_delivery_rows_alone(pool: ThreadPoolExecutor) -> None:
    """A delivery record written alone, and one written with its mark record, carry it alike."""
    ledger = memory_ledger()
    a, b = OrderRef(1, V1), OrderRef(2, V1)
    assert ledger.record_deliveries([Delivery(a, "key-a", "PO-A")]) == [True]
    assert ledger.finish_deliveries([Delivery(b, "key-b", "PO-B")], [], "token", {}) == [True]
    assert entry(ledger, 1).delivered_reference == "PO-A" and entry(ledger, 2).delivered_reference == "PO-B"
    assert ledger.record_deliveries([(a, "key-a")]) == [True]  # (ref, key): no reference
    assert entry(ledger, 1).delivered_reference == ""
