"""`traede-export order`: each version in the protocol's words, and the sentence that says what
happens next, for the states the local stack cannot hold still long enough to look at."""

from __future__ import annotations

from traede_export.models import OrderRef
from traede_export.protocol import LedgerEntry
from traede_ops.commands.order import Dlq, versions_of, what_next

NOW = 1_800_000_000.0
V1, V2 = OrderRef(7, "2026-01-05 10:00:00").version, OrderRef(7, "2026-01-06 10:00:00").version
READ = Dlq(True, "read")


def tell(entry: LedgerEntry | None, dlq: Dlq = READ) -> tuple[list[tuple[str, str]], str]:
    versions = versions_of(entry, 7, "erp", dlq, NOW)
    return [(v.version, v.state) for v in versions], what_next(entry, versions, dlq, NOW)


def test_a_post_on_its_way() -> None:
    entry = LedgerEntry(7, enqueued_version=V1, lease_until=int(NOW) + 7200, delivering_version=V1,
                        delivering_key="traede:erp:7:k", delivering_until=int(NOW) + 50)  # fmt: skip
    versions, next_ = tell(entry)
    assert versions == [(V1, "delivering")]
    assert next_.startswith("a POST to the ERP is on its way") and "the ERP's answer decides" in next_
    assert versions_of(entry, 7, "erp", READ, NOW)[0].idempotency_key == "traede:erp:7:k"


def test_delivered_not_marked_names_the_first_poll_that_marks_it() -> None:
    lease = int(NOW) + 3600
    entry = LedgerEntry(7, enqueued_version=V1, lease_until=lease, delivered_version=V1, delivered_ms=1)
    versions, next_ = tell(entry)
    assert versions == [(V1, "delivered")]
    assert next_.startswith("delivered, not marked yet") and "the first poll after 09:00 UTC on 2027-01-15" in next_


def test_a_claim_that_ran_out_is_fetched_again_or_may_be_parked_when_the_dlq_was_not_read() -> None:
    entry = LedgerEntry(7, enqueued_version=V1, lease_until=int(NOW) - 1, sent_version=V1)
    versions, next_ = tell(entry)
    assert versions == [(V1, "unseen")] and next_.startswith("its claim ran out without a delivery: the next poll")
    assert "it may be parked there" in tell(entry, Dlq(False, "not read"))[1]


def test_a_copy_parked_after_its_tries_names_no_reason_it_does_not_have() -> None:
    entry = LedgerEntry(7, enqueued_version=V2, lease_until=int(NOW) + 60, delivered_version=V1)
    dlq = Dlq(True, "read", [{"version": V2, "last_error": None}])
    versions, next_ = tell(entry, dlq)
    assert versions == [(V2, "claimed"), (V1, "superseded")]
    assert next_.startswith("parked on the DLQ after its tries failed") and next_.endswith("then `redrive`")


def test_a_version_only_the_dlq_knows_is_unseen_by_the_ledger() -> None:
    dlq = Dlq(True, "read", [{"version": V2, "last_error": "rejected by the receiving system: HTTP 422"}])
    versions, next_ = tell(None, dlq)
    assert versions == [(V2, "unseen")]
    assert next_ == "parked on the DLQ: rejected by the receiving system: HTTP 422; fix the cause, then `redrive`"
