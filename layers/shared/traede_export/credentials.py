"""Credentials from Secrets Manager through Powertools Parameters, cached per container.

The values only ever travel in request headers; they are never logged or returned. They are
checked as HTTP header material when read: a value with CR/LF otherwise fails deep in http.client
with an exception that quotes it, and the runtime logs that message.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from traede_export.errors import CredentialsError
from traede_export.http import header_value_problem
from traede_export.redact import register
from traede_export.target import RESERVED_HEADERS

SECRET_MAX_AGE = 300  # seconds; short enough for a rotation to take effect quickly
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 7230 token


class _NoSecretBodies(logging.Filter):
    """botocore logs every response body at DEBUG, GetSecretValue's `SecretString` included."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(_holds_secret(arg) for arg in args)


def _holds_secret(arg: object) -> bool:
    if isinstance(arg, bytes):
        return b'"SecretString"' in arg or b'"SecretBinary"' in arg
    return isinstance(arg, str) and ('"SecretString"' in arg or '"SecretBinary"' in arg)


_NO_SECRET_BODIES = _NoSecretBodies()


class ReadsSecrets(Protocol):
    """What the header providers need: a secret's parsed JSON by name (`SecretReader`, or a fake)."""

    def __call__(self, secret_name: str, /) -> Any: ...


class SecretReader:
    """Reads JSON secrets through one Powertools `SecretsProvider` per container.

    The provider (and its cache) belongs to the container's wiring rather than Powertools'
    process-wide default, so it uses the container's boto3 client.
    """

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._provider: Any = None
        # The first batch's POST threads all ask at once; one of them fetches, the rest read the cache.
        self._lock = threading.Lock()
        # A DEBUG log level (e.g. Lambda's ApplicationLogLevel) would otherwise print every secret.
        logging.getLogger("botocore.parsers").addFilter(_NO_SECRET_BODIES)

    def __call__(self, secret_name: str) -> Any:
        # Imported lazily: Parameters costs ~150 ms and only a real call needs it.
        from aws_lambda_powertools.utilities import parameters

        try:
            with self._lock:
                if self._provider is None:
                    self._provider = parameters.SecretsProvider(boto3_client=self._client())
                return self._provider.get(secret_name, transform="json", max_age=SECRET_MAX_AGE)
        except parameters.exceptions.TransformParameterError:
            raise CredentialsError(f"secret {secret_name!r} is not valid JSON") from None
        except parameters.exceptions.GetParameterError as exc:
            raise CredentialsError(f"cannot read secret {secret_name!r}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure"):
        if known in text:
            return known
    return type(exc.__cause__ or exc).__name__


def traede_headers(secret_name: str, read: ReadsSecrets) -> Callable[[], dict[str, str]]:
    """Headers for Traede: a bearer token and the app key, both from one JSON secret."""

    def provide() -> dict[str, str]:
        value = read(secret_name)
        if not isinstance(value, Mapping):
            raise CredentialsError(f"secret {secret_name!r} must be a JSON object")
        token, app_key = value.get("access_token"), value.get("app_key")
        if not isinstance(token, str) or not token or not isinstance(app_key, str) or not app_key:
            raise CredentialsError(f"secret {secret_name!r} needs non-empty 'access_token' and 'app_key'")
        for field, text in (("access_token", token), ("app_key", app_key)):
            problem = header_value_problem(text)
            if problem:
                raise CredentialsError(f"secret {secret_name!r}: the value of {field!r} {problem}")
        register(token, f"Bearer {token}", app_key)  # masked in whatever leaves the process from now on
        return {"Authorization": f"Bearer {token}", "X-Traede-App-Key": app_key}

    return provide


def target_headers(secret_name: str | None, read: ReadsSecrets) -> Callable[[], dict[str, str]]:
    """Headers for the receiving system: the secret is a JSON object of header names to values."""

    def provide() -> dict[str, str]:
        if secret_name is None:
            return {}
        value = read(secret_name)
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise CredentialsError(f"secret {secret_name!r} must be a JSON object of header: value strings")
        for position, (name, text) in enumerate(value.items(), start=1):
            _check_target_header(secret_name, position, name, text)
        register(*value.values())  # every value: the secret does not say which ones are credentials
        return dict(value)

    return provide


def _check_target_header(secret_name: str, position: int, name: str, value: str) -> None:
    if not HEADER_NAME.fullmatch(name):
        # Not quoted: a name of the wrong shape may well be a misplaced value.
        raise CredentialsError(f"secret {secret_name!r}: header #{position} has a name that is not an HTTP token")
    if name.lower() in RESERVED_HEADERS:
        # Applied last, it would replace the order's Idempotency-Key or the body's type.
        raise CredentialsError(f"secret {secret_name!r} may not set {name}: the forwarder sets it itself")
    problem = header_value_problem(value)
    if problem:
        raise CredentialsError(f"secret {secret_name!r}: the value of header {name!r} {problem}")
