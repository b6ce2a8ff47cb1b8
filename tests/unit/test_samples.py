"""Which bodies are test events: the bundled samples, and nothing else."""

from __future__ import annotations

import json

import pytest

from traede_export.mapping import SAMPLE_ORDER
from traede_export.samples import MARKER, is_sample, sample_key
from traede_local.events import load_event


def test_every_bundled_sample_order_is_a_test_event() -> None:
    assert is_sample(json.dumps(load_event("order")))
    assert all(is_sample(r["body"]) for r in load_event("sqs-order")["Records"])
    assert is_sample(SAMPLE_ORDER.read_text())  # the cold start's copy of the sample order


@pytest.mark.parametrize(
    "body",
    [
        '{"id": 4711, "updated_at": "2026-11-24 15:30:45"}',
        json.dumps({"id": 1, MARKER: False}),
        json.dumps({"id": 1, MARKER: None}),
        json.dumps({"id": 1, "note": f"mentions {MARKER} in a value"}),
        json.dumps({"id": 1, "lines": [{MARKER: True}]}),  # only at the top level
        f'{{"{MARKER}": true, "id": ',  # not JSON
        "",
        None,
    ],
)
def test_other_bodies_are_not_test_events(body: str | None) -> None:
    assert not is_sample(body)


def test_a_test_event_has_its_own_idempotency_key() -> None:
    key = "traede:erp:4711:2026-11-24T15:30:45.000000Z"
    assert sample_key(key) != key and sample_key(key).startswith(key)
