"""What is wrong for every order alike is a configuration error, never a refusal remembered
against each order's version (review of issue 21)."""

from __future__ import annotations

import pytest

from helpers.env import FORWARDER, POLLER
from traede_export.config import Env, ForwarderConfig, PollerConfig
from traede_export.errors import ConfigError
from traede_export.http import header_value_problem
from traede_export.models import OrderRef, idempotency_key
from traede_export.target import DeliveryResult, Outcome

ORDER = {"id": 7, "updated_at": "2026-11-02 10:00:00"}


@pytest.mark.parametrize(("config", "env"), [(ForwarderConfig, FORWARDER), (PollerConfig, POLLER)])
def test_a_system_id_no_header_can_carry_is_refused_at_cold_start(
    config: type[ForwarderConfig] | type[PollerConfig], env: dict[str, str]
) -> None:
    # Every Idempotency-Key holds the system id; one that is not Latin-1 made every order
    # "cannot send", remembered per version (status None) and parked, when the setup is wrong.
    # (The template's SystemId pattern is ASCII; the functions' own reader checked nothing.)
    with pytest.raises(ConfigError, match="TRAEDE_SYSTEM_ID cannot go in an Idempotency-Key header"):
        config.from_env({**env, Env.TRAEDE_SYSTEM_ID: "Magazyn-Łódź"})


def test_every_order_of_a_system_id_the_cold_start_accepts_can_be_sent() -> None:
    cfg = ForwarderConfig.from_env({**FORWARDER, Env.TRAEDE_SYSTEM_ID: "Magazyn-Lodz_2 (Ost)"})
    key = idempotency_key(cfg.traede.system_id, OrderRef.from_order(ORDER))
    assert header_value_problem(key) is None


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
