"""Errors that mean "the setup is wrong", not "this order is wrong"."""

from __future__ import annotations

from traede_export.redact import mask


class ConfigurationError(RuntimeError):
    """A setting (a variable, a secret, the environment) is wrong for every order alike.

    Never a refusal of an order: the invocation fails (its function's Errors alarm fires), its
    batch comes back, and nothing is recorded against a version. Names the setting, never a
    secret value (and masks any it is given: see redact.py).
    """

    def __init__(self, message: str) -> None:
        super().__init__(mask(message))
