"""The `make_stack` fixture's keyword arguments stay `LocalOptions`' fields, name for name and type for type."""

from __future__ import annotations

from typing import get_type_hints

from traede_local.local_stack import LocalOptions, StackOptions


def test_stack_options_are_local_options_fields() -> None:
    assert get_type_hints(StackOptions) == get_type_hints(LocalOptions)
