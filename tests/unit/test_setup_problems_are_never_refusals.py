"""What is wrong for every order alike is a configuration error, never a refusal remembered
against each order's version (review of issue 21)."""

from __future__ import annotations

import json

import pytest
import requests

from traede_export.config import ConfigError, Env, ForwarderConfig
from traede_export.errors import ConfigurationError
from traede_export.models import OrderRef, idempotency_key
from traede_export.target import DeliveryResult, Outcome, TargetClient

FORWARDER = {
    Env.TRAEDE_SYSTEM_ID: "erp",
    Env.TRAEDE_CREDENTIALS_SECRET: "traede/creds",
    Env.TARGET_URL: "https://erp.example.com/orders",
    Env.DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/1/dlq",
    Env.LEDGER_TABLE: "ledger",
    Env.LARGE_ORDER_BUCKET: "large-orders",
}
ORDER = {"id": 7, "updated_at": "2026-11-02 10:00:00"}


def test_a_system_id_no_header_can_carry_never_refuses_every_order() -> None:
    # Every Idempotency-Key holds the system id; one that is not Latin-1 makes every order
    # "cannot send", remembered per version (status None) and parked, when the setup is wrong.
    # (The template's SystemId pattern is ASCII; the functions' own reader checks nothing.)
    try:
        cfg = ForwarderConfig.from_env({**FORWARDER, Env.TRAEDE_SYSTEM_ID: "Magazyn-Łódź"})
    except ConfigError:
        return  # refused at cold start
    client = TargetClient(requests.Session(), cfg.target_url, cfg.http.timeout)
    key = idempotency_key(cfg.traede.system_id, OrderRef.from_order(ORDER))
    try:
        result = client.deliver(json.dumps(ORDER), key)
    except ConfigurationError:
        return  # fails the invocation
    assert not result.refuses_version, result


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (421, "Misdirected Request: TARGET_URL names a host this server does not serve"),
        (426, "Upgrade Required: TARGET_URL says http where the ERP wants https"),
        (431, "Request Header Fields Too Large: the static or secret headers"),
        (415, "Unsupported Media Type: the forwarder always sends application/json"),
    ],
)
def test_an_answer_about_the_setup_is_never_remembered_against_a_version(status: int, meaning: str) -> None:
    result = DeliveryResult(Outcome.REJECTED, f"HTTP {status}: {meaning}", status)
    assert not result.refuses_version, meaning
