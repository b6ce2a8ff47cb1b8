"""Masking the credentials this process holds: the forms they travel in, and the sinks that mask."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from traede_export.credentials import target_headers, traede_headers
from traede_export.errors import ConfigurationError, TraedeError
from traede_export.queue import OutboundMessage, QueueWriter
from traede_export.redact import MASK, MaskingFilter, excerpt, json_dumps, mask, masked_streams, register
from traede_export.target import DeliveryResult, Outcome

# Unique per test: the registry is process-wide, and a value once registered stays masked.
SECRET = 'k3y/with+odd"chars\\and-ø'


def test_each_form_a_secret_travels_in_is_masked() -> None:
    register(SECRET)
    for form in (
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],  # JSON, ASCII-escaped
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),  # PHP's json_encode
    ):
        assert mask(f"error: {form}!") == f"error: {MASK}!", form


def test_the_credential_of_an_authorization_value_is_masked_on_its_own() -> None:
    register("Basic dW5pdC11c2VyOnB3")
    assert mask("Basic dW5pdC11c2VyOnB3 refused") == f"{MASK} refused"
    assert mask("credential dW5pdC11c2VyOnB3 refused") == f"credential {MASK} refused"


def test_short_and_empty_values_are_not_masked() -> None:
    register("", "12345", None)
    assert mask("HTTP 12345 at 12345") == "HTTP 12345 at 12345"


def test_the_longest_form_wins() -> None:
    register("Bearer unit-tok-77aa", "unit-tok-77aa")
    assert mask("Authorization: Bearer unit-tok-77aa") == f"Authorization: {MASK}"


def test_an_excerpt_is_masked_before_it_is_cut() -> None:
    register("unit-cut-secret-0123456789")
    body = "x" * 190 + "unit-cut-secret-0123456789"
    assert excerpt(body, 200) == "x" * 190 + MASK  # cut first, "unit-cut-s" would remain


def test_secrets_are_registered_where_they_are_read() -> None:
    traede = traede_headers("t", lambda _: {"access_token": "unit-token-5f5f", "app_key": "unit-app-key-6e6e"})()
    target = target_headers("s", lambda _: {"X-Api-Key": "unit-api-key-7d7d", "X-Tenant": "unit-tenant-8c8c"})()
    text = json.dumps([traede, target])
    for value in ("unit-token-5f5f", "unit-app-key-6e6e", "unit-api-key-7d7d", "unit-tenant-8c8c"):
        assert value not in mask(text)


def test_errors_made_from_answers_are_masked() -> None:
    register("unit-answer-key-9b9b")
    quoted = "HTTP 403: key unit-answer-key-9b9b has no access"
    assert "unit-answer-key" not in str(TraedeError(quoted, 403))
    assert "unit-answer-key" not in DeliveryResult(Outcome.REJECTED, quoted, 403).reason
    assert "unit-answer-key" not in str(ConfigurationError(quoted))


def test_log_lines_and_records_are_masked() -> None:
    register("unit-log-secret-1a1a")
    line = json_dumps({"message": "got unit-log-secret-1a1a", "reason": ["unit-log-secret-1a1a"], "at": object()})
    assert "unit-log-secret" not in line and json.loads(line)["message"] == f"got {MASK}"

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", ("unit-log-secret-1a1a",), None)
    record.reason = "unit-log-secret-1a1a"
    try:
        raise ValueError("unit-log-secret-1a1a")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert MaskingFilter().filter(record)
    shown = logging.Formatter("%(message)s %(reason)s").format(record)
    assert "unit-log-secret" not in shown and "ValueError" in shown


class FakeSqs:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: Any) -> Any:
        self.entries += Entries
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_the_queue_writer_masks_attributes_and_sends_the_body_untouched() -> None:
    register("unit-sqs-secret-2b2b")
    sqs = FakeSqs()
    body = '{"id": 1, "note": "unit-sqs-secret-2b2b"}'  # Traede's order: never altered
    reason = {"failure_reason": {"DataType": "String", "StringValue": "HTTP 403: unit-sqs-secret-2b2b"}}
    assert QueueWriter(sqs, "q").send([OutboundMessage("0", body, reason)]).sent == ["0"]
    (entry,) = sqs.entries
    assert entry["MessageBody"] == body
    assert entry["MessageAttributes"]["failure_reason"]["StringValue"] == f"HTTP 403: {MASK}"


def test_masked_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    register("unit-cli-secret-3c3c")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with masked_streams():
        print("token unit-cli-secret-3c3c")
        print("error unit-cli-secret-3c3c", file=sys.stderr)
    assert sys.stdout is out and sys.stderr is err
    assert out.getvalue() == f"token {MASK}\n" and err.getvalue() == f"error {MASK}\n"
