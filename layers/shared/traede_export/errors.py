"""Every error this project raises on purpose, under one base.

`ExportError` is "ours": a handler, a log line or a test can tell it from an unexpected error (a
bug, a library's surprise). Its message is masked (see redact.py): an error can quote an answer
from Traede or the ERP, and such an answer may quote a credential back. The modules that raise
them also export them under their old names (e.g. `traede_export.traede.TraedeError`).
"""

from __future__ import annotations

from traede_export.redact import mask


class ExportError(Exception):
    """An error the export raises on purpose, with a message fit for a log (masked)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(mask(message))


# ------------------------------------------------------------------- the setup is wrong


class ConfigurationError(ExportError, RuntimeError):
    """A setting (a variable, a secret, the environment) is wrong for every order alike.

    Never a refusal of an order: the invocation fails (its function's Errors alarm fires), its
    batch comes back, and nothing is recorded against a version. Names the setting, never a
    secret value.
    """


class ConfigError(ConfigurationError, ValueError):
    """Raised at cold start; the message names every bad variable."""


class CredentialsError(ConfigurationError):
    """A secret is missing, unreadable or of the wrong shape. Names the secret, never its value."""


# ------------------------------------------------------------------- one order is wrong


class InvalidOrder(ExportError, ValueError):
    """A message body or an export entry that is not a production order."""


class RequestError(ExportError, ValueError):
    """This order cannot become a request (mapping or URL placeholder): retrying cannot help."""


class MappingError(ExportError, ValueError):
    """A mapping that cannot be loaded, or cannot map one order. The message says which and why.

    `code` is JSONata's error code when the engine gave one (e.g. T1006: not a function).
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LargeOrderMissing(ExportError):
    """The object a pointer names is gone (expired, deleted) or the bucket is not this stack's."""


class LargeOrderMismatch(ExportError):
    """The object does not hold what its pointer names: it was replaced in the bucket."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data  # what the object holds instead, for a reason that says what it is


# ------------------------------------------------------------------- a call did not go through

# 4xx answers that say nothing about the orders in the call: credentials, time-outs, throttling.
NOT_ABOUT_THE_ORDERS = frozenset({401, 403, 407, 408, 429})
# Answers that come back the same on every try until someone fixes the configuration.
PERSISTENT_STATUSES = frozenset({401, 403, 404, 405, 407})


class TraedeError(ExportError, RuntimeError):
    """Traede answered with an error, an unexpected body, or not at all."""

    def __init__(self, message: str, status: int | None = None, unreadable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unreadable = unreadable  # answered, but not with the export's shape

    @property
    def persistent(self) -> bool:
        """Every poll will fail alike (credentials, URL, redirect, a body that is not the export)."""
        if self.unreadable:
            return True
        return self.status is not None and (300 <= self.status < 400 or self.status in PERSISTENT_STATUSES)

    @property
    def refused(self) -> bool:
        """A 4xx about the orders themselves (e.g. one was deleted): repeating the call cannot help."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in NOT_ABOUT_THE_ORDERS


class PartialWrite(ExportError):
    """Some of a call's ledger writes failed for another reason than their condition; the others
    took effect. `results` has one answer per request, as the call would have returned, and None
    for a write that failed."""

    def __init__(self, results: list[bool | None], error: Exception) -> None:
        super().__init__(f"{results.count(None)} of {len(results)} ledger writes failed: {type(error).__name__}")
        self.results = results
        self.error = error


class BadEvent(ExportError, ValueError):
    """The poller was invoked with input it cannot act on."""


class PollFailed(ExportError, RuntimeError):
    """The poll stopped on an error; what was enqueued before it stays enqueued."""
