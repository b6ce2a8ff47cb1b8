"""The project's own errors: one module, one base, masked messages."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import traede_export
from traede_export import errors
from traede_export.errors import ExportError, TraedeError
from traede_export.redact import register


def test_every_error_the_layer_defines_lives_in_errors_py_under_one_base() -> None:
    defined = {}
    for module in pkgutil.iter_modules(traede_export.__path__):
        loaded = importlib.import_module(f"traede_export.{module.name}")
        for name, value in vars(loaded).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("traede_export")
            ):
                defined[name] = value
    assert defined, "no errors found: the scan is broken"
    assert {c.__module__ for c in defined.values()} == {errors.__name__}
    assert all(issubclass(c, ExportError) for c in defined.values()), [n for n, c in defined.items()]


def test_an_error_quoting_a_known_secret_masks_it() -> None:
    register("errors-canary-7d3f1a")
    assert "errors-canary-7d3f1a" not in str(TraedeError("answered HTTP 401: bad token errors-canary-7d3f1a", 401))
