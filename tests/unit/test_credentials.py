"""Secrets are checked as HTTP header material when read, and errors never quote them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from traede_export.credentials import ReadsSecrets, SecretReader, target_headers, traede_headers
from traede_export.errors import CredentialsError

SECRET = "traede-export/target"
CANARY = "CANARY8841"


def reader(value: object) -> ReadsSecrets:
    """An in-memory secret store holding one value under every name."""
    return lambda name: value


@pytest.mark.parametrize(
    "value",
    [
        {"X-Api-Key": f"{CANARY}\n"},
        {"X-Api-Key": f"{CANARY}\r\nX-Injected: 1"},
        {"X-Api-Key": f"{CANARY}\x00"},
        {"X-Api-Key": f"{CANARY}\x7f"},
        {"X-Api-Key": f"{CANARY}\u0394"},  # not latin-1
        {"X-Api-Key": f" {CANARY}"},
        {f"X Api {CANARY}": "v"},  # not an RFC 7230 token
        {f"X-Api-Key\n{CANARY}": "v"},
        {"": CANARY},
    ],
)
def test_a_target_secret_of_the_wrong_shape_is_refused_without_its_value(value: dict[str, str]) -> None:
    with pytest.raises(CredentialsError) as error:
        target_headers(SECRET, reader(value))()
    assert SECRET in str(error.value) and CANARY not in str(error.value)


@pytest.mark.parametrize("name", ["Idempotency-Key", "idempotency-key", "CONTENT-TYPE", "Content-Type"])
def test_a_target_secret_cannot_override_the_forwarders_headers(name: str) -> None:
    with pytest.raises(CredentialsError, match="may not set"):
        target_headers(SECRET, reader({"X-Api-Key": "k", name: CANARY}))()


def test_a_good_target_secret_passes_as_it_is() -> None:
    value = {"X-Api-Key": "abc-123_=/+", "Authorization": "Basic dXNlcjpwYXNz", "X-Empty": "", "X-Latin": "café"}
    assert target_headers(SECRET, reader(value))() == value


@pytest.mark.parametrize(
    "value",
    [
        {"access_token": f"{CANARY}\n", "app_key": "app"},
        {"access_token": "tok", "app_key": f"{CANARY}\r\n"},
        {"access_token": f"{CANARY}\u2028", "app_key": "app"},
        {"access_token": "tok", "app_key": f"{CANARY}\t"},
    ],
)
def test_a_traede_secret_of_the_wrong_shape_is_refused_without_its_value(value: dict[str, str]) -> None:
    with pytest.raises(CredentialsError) as error:
        traede_headers("traede-export/traede", reader(value))()
    message = str(error.value)
    assert "traede-export/traede" in message and CANARY not in message
    assert "access_token" in message or "app_key" in message  # which field to fix


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["tok", "app"], "must be a JSON object"),
        ("tok", "must be a JSON object"),
        ({"access_token": "tok"}, "needs non-empty 'access_token' and 'app_key'"),
        ({"access_token": "", "app_key": "app"}, "needs non-empty 'access_token' and 'app_key'"),
        ({"access_token": 42, "app_key": "app"}, "needs non-empty 'access_token' and 'app_key'"),
    ],
)
def test_a_traede_secret_that_is_not_token_and_key_says_what_it_needs(value: object, problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem):
        traede_headers("traede-export/traede", reader(value))()


@pytest.mark.parametrize("value", [["X-Api-Key", "k"], "k", {"X-Api-Key": 42}, {"X-Api-Key": None}])
def test_a_target_secret_that_is_not_header_strings_is_refused(value: object) -> None:
    with pytest.raises(CredentialsError, match="must be a JSON object of header: value strings"):
        target_headers(SECRET, reader(value))()


def test_no_target_secret_means_no_headers_and_no_read() -> None:
    def never(name: str) -> object:
        raise AssertionError(f"read {name}")

    assert target_headers(None, never)() == {}


class CountingSecretsClient:
    """Answers GetSecretValue slowly, as Secrets Manager does on a cold start, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        time.sleep(0.05)
        return {"Name": kwargs["SecretId"], "SecretString": '{"api_key": "k"}'}


def test_concurrent_first_reads_fetch_the_secret_once() -> None:
    client = CountingSecretsClient()
    read = SecretReader(lambda: client)
    with ThreadPoolExecutor(10) as pool:
        values = list(pool.map(read, ["target"] * 10))
    assert values == [{"api_key": "k"}] * 10
    assert client.calls == 1
