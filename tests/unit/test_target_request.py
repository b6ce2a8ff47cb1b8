"""The request shape: method, URL placeholders, static headers, the mapped body, and their configuration."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from traede_export.config import Env, ForwarderConfig
from traede_export.credentials import target_headers
from traede_export.errors import ConfigError, CredentialsError, RequestError
from traede_export.mapping import OrderMapping
from traede_export.target import (
    Outcome,
    RequestShape,
    TargetClient,
    build_request,
    fill_url,
    parse_static_headers,
    sent_url,
    url_template_problem,
)
from traede_local.events import load_event

ORDER = load_event("order")
BODY = json.dumps(ORDER)
KEY = "traede:erp-1:4711:2026-11-24T15:30:45.000000Z"
FORWARDER = {
    Env.TRAEDE_SYSTEM_ID: "erp-1",
    Env.TRAEDE_CREDENTIALS_SECRET: "traede/creds",
    Env.TARGET_URL: "https://erp.example.com/orders",
    Env.DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/1/dlq",
    Env.LEDGER_TABLE: "ledger",
    Env.LARGE_ORDER_BUCKET: "large-orders",
}


def test_without_a_mapping_the_body_is_traedes_order_byte_for_byte() -> None:
    request = build_request("https://erp.example.com/orders", RequestShape(), BODY, KEY)
    assert (request.method, request.url, request.body) == ("POST", "https://erp.example.com/orders", BODY.encode())
    assert request.headers == {"Content-Type": "application/json", "Idempotency-Key": KEY}


def test_put_with_placeholders_static_headers_and_a_mapping() -> None:
    shape = RequestShape(
        method="PUT",
        headers={"X-Erp-Company": "CRONUS", "Accept": "application/json"},
        mapping=OrderMapping.load("erp-purchase-order.jsonata"),
        system_id="erp-1",
    )
    request = build_request("https://erp.example.com/po/{id}?number={order_number}", shape, BODY, KEY, None)
    assert request.method == "PUT"
    assert request.url == "https://erp.example.com/po/4711?number=TEST-EVENT-4711"
    assert request.headers == {
        "Content-Type": "application/json",
        "X-Erp-Company": "CRONUS",
        "Accept": "application/json",
        "Idempotency-Key": KEY,
    }
    body = json.loads(request.body)
    assert body["header"]["externalDocumentNo"] == "TEST-EVENT-4711"
    assert body["header"]["source"] == {
        "system": "traede",
        "systemId": "erp-1",
        "idempotencyKey": KEY,
        "reexportSince": None,
    }


def test_placeholder_values_are_url_encoded_as_one_segment() -> None:
    order = {**ORDER, "order_number": "PO 47/11?x=1&y#z"}
    assert fill_url("https://erp/po/{order_number}", order) == "https://erp/po/PO%2047%2F11%3Fx%3D1%26y%23z"


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("https://erp/po/{order_number}", ".."),
        ("https://erp/po/{order_number}", "."),
        ("https://erp/po/{order_number}/lines", ".."),
        ("https://erp/po/.{order_number}", "."),  # the template's own dot makes ".." with the value
        ("https://erp/po/%2E{order_number}", "."),  # requests decodes %2E before it drops dot segments
    ],
)
def test_a_value_that_makes_a_dot_segment_is_an_error_for_that_order(template: str, value: str) -> None:
    with pytest.raises(RequestError, match=r"order 4711 .*\{order_number\}.*dot segment"):
        fill_url(template, {**ORDER, "order_number": value})


@pytest.mark.parametrize(
    ("template", "value", "url"),
    [
        ("https://erp/po/{order_number}", "...", "https://erp/po/..."),
        ("https://erp/po/{order_number}", "%2E%2E", "https://erp/po/%252E%252E"),
        ("https://erp/po/x{order_number}", "..", "https://erp/po/x.."),
        ("https://erp/po?n={order_number}", "..", "https://erp/po?n=.."),  # the query is never normalised
    ],
)
def test_dots_that_leave_their_segment_in_place_are_sent(template: str, value: str, url: str) -> None:
    filled = fill_url(template, {**ORDER, "order_number": value})
    assert filled == url and sent_url(filled) == url


@pytest.mark.parametrize(
    ("order", "why"),
    [
        ({"id": 4711, "updated_at": "2026-01-01 00:00:00"}, "order 4711 has no 'order_number'"),
        ({**ORDER, "order_number": ""}, "order 4711 has no 'order_number'"),
        ({**ORDER, "order_number": None}, "order 4711 has no 'order_number'"),
        ({**ORDER, "order_number": {"x": 1}}, "has no string or whole-number 'order_number'"),
        ({**ORDER, "order_number": True}, "has no string or whole-number 'order_number'"),
    ],
)
def test_a_missing_placeholder_is_an_error_for_that_order(order: dict[str, Any], why: str) -> None:
    with pytest.raises(RequestError, match=why) as caught:
        build_request("https://erp/po/{order_number}", RequestShape(), json.dumps(order), KEY)
    assert "{order_number}" in str(caught.value)


def test_a_mapping_failure_names_the_order(tmp_path: Any) -> None:
    path = tmp_path / "strict.jsonata"
    path.write_text('$error("no vendor")')
    shape = RequestShape(mapping=OrderMapping.load(str(path)))
    with pytest.raises(RequestError, match=r"order 4711: mapping .*strict\.jsonata failed: .*no vendor"):
        build_request("https://erp/po", shape, BODY, KEY)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://erp/po/{id}", None),
        ("https://erp/po?n={order_number}&s={status}", None),
        ("https://erp/po/{id", "unmatched"),
        ("https://erp/po/id}", "unmatched"),
        ("https://erp/po/{supplier.id}", "not order field names"),
        ("https://erp/po/{}", "not order field names"),
        ("https://{id}.erp/po", "not in the host"),
    ],
)
def test_url_templates(url: str, problem: str | None) -> None:
    found = url_template_problem(url)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_static_headers_are_parsed() -> None:
    assert parse_static_headers('{"X-Erp-Company": "CRONUS", "Accept-Language": "da\\tDK"}') == {
        "X-Erp-Company": "CRONUS",
        "Accept-Language": "da\tDK",
    }
    assert parse_static_headers("{}") == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON"),
        ('["X-A"]', "must be a JSON object"),
        ('{"X A": "1"}', "not an HTTP token"),
        ('{"X-A:": "1"}', "not an HTTP token"),
        ('{"idempotency-key": "mine"}', "may not set idempotency-key"),
        ('{"Content-Type": "text/plain"}', "may not set Content-Type"),
        ('{"X-A": "1", "x-a": "2"}', "twice"),
        ('{"X-A": 1}', "string value"),
        ('{"X-A": "a\\r\\nX-Injected: 1"}', "control character"),
        ('{"X-A": "\\u20ac"}', "Latin-1"),
    ],
)
def test_bad_static_headers(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_static_headers(text)


def test_forwarder_config_reads_the_request_shape() -> None:
    cfg = ForwarderConfig.from_env(
        {
            **FORWARDER,
            Env.TARGET_URL: "https://erp.example.com/po/{id}",
            Env.TARGET_METHOD: "put",
            Env.TARGET_MAPPING: "erp-purchase-order.jsonata",
            Env.TARGET_STATIC_HEADERS: '{"X-Erp-Company": "CRONUS"}',
        }
    )
    assert (cfg.target_method, cfg.target_mapping) == ("PUT", "erp-purchase-order.jsonata")
    assert cfg.target_static_headers == {"X-Erp-Company": "CRONUS"}
    default = ForwarderConfig.from_env(FORWARDER)
    assert (default.target_method, default.target_mapping, default.target_static_headers) == ("POST", None, {})


def test_bad_request_settings_fail_the_cold_start_in_one_message() -> None:
    with pytest.raises(ConfigError) as caught:
        ForwarderConfig.from_env(
            {
                **FORWARDER,
                Env.TARGET_URL: "https://erp.example.com/po/{id",
                Env.TARGET_METHOD: "PATCH",
                Env.TARGET_STATIC_HEADERS: '{"Idempotency-Key": "x"}',
            }
        )
    message = str(caught.value)
    for name in (Env.TARGET_URL, Env.TARGET_METHOD, Env.TARGET_STATIC_HEADERS):
        assert name in message


def test_the_target_secret_cannot_replace_the_idempotency_key() -> None:
    secret = {"Authorization": "Bearer x", "Idempotency-Key": "fixed"}
    with pytest.raises(CredentialsError, match="may not set Idempotency-Key") as caught:
        target_headers("target/creds", lambda _name: secret)()
    assert "Bearer x" not in str(caught.value) and "fixed" not in str(caught.value)
    assert target_headers("target/creds", lambda _name: {"Authorization": "Bearer x"})() == {
        "Authorization": "Bearer x"
    }


def test_a_placeholder_value_that_cannot_be_encoded_is_a_rejection_of_that_order() -> None:
    """A lone surrogate (an emoji cut in half, valid JSON as `\\ud83d`) in the placeholder's field cannot be
    put in a URL. It is this order's content: a permanent rejection with a reason (parked at once, the
    version remembered), not an "unexpected error" the queue retries 5 times and polls bring back."""
    body = json.dumps({**ORDER, "order_number": "PO-\ud83d"})
    client = TargetClient(requests.Session(), "https://erp.example.com/po/{order_number}", (1.0, 1.0))
    result = client.deliver(body, KEY)  # fails before any connection is opened
    assert result.outcome is Outcome.REJECTED
    assert result.refuses_version
    assert "order 4711" in result.reason and "{order_number}" in result.reason
