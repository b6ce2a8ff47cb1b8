"""Traede's filter groups: validation and the PHP-style nested query encoding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPERATORS = frozenset({"eq", "gt", "gte", "lt", "lte", "ct", "sw", "ew", "in", "bt"})
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Filter:
    key: str
    operator: str
    value: Scalar | tuple[Scalar, ...]
    negate: bool = False


@dataclass(frozen=True)
class FilterGroup:
    filters: tuple[Filter, ...]
    any_of: bool = False  # Traede's `or` flag


def parse_filter_groups(raw: Any) -> tuple[FilterGroup, ...]:
    """Validate the JSON form (as in Traede's docs) and return typed groups."""
    if not isinstance(raw, list):
        raise ValueError("expected a JSON array of groups")
    return tuple(_parse_group(i, group) for i, group in enumerate(raw))


def _parse_group(i: int, group: Any) -> FilterGroup:
    if not isinstance(group, dict) or not isinstance(group.get("filters"), list):
        raise ValueError(f"group {i} must be an object with a 'filters' array")
    any_of = group.get("or", False)
    if not isinstance(any_of, bool):
        raise ValueError(f"group {i}: 'or' must be true or false")
    filters = tuple(_parse_filter(i, j, f) for j, f in enumerate(group["filters"]))
    if not filters:
        raise ValueError(f"group {i} has no filters")
    return FilterGroup(filters=filters, any_of=any_of)


def _parse_filter(i: int, j: int, raw: Any) -> Filter:
    where = f"group {i} filter {j}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object")
    key, operator, value = raw.get("key"), raw.get("operator"), raw.get("value")
    if not isinstance(key, str) or not key:
        raise ValueError(f"{where}: 'key' must be a non-empty string")
    if operator not in OPERATORS:
        raise ValueError(f"{where}: operator {operator!r} is not one of {sorted(OPERATORS)}")
    negate = raw.get("not", False)
    if not isinstance(negate, bool):
        raise ValueError(f"{where}: 'not' must be true or false")
    if operator in ("in", "bt"):
        if not isinstance(value, list) or not all(_is_scalar(v) for v in value):
            raise ValueError(f"{where}: operator {operator!r} needs an array of values")
        if operator == "bt" and len(value) != 2:
            raise ValueError(f"{where}: operator 'bt' needs exactly two values")
        return Filter(key, operator, tuple(value), negate)
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{where}: 'value' must be a string or number")
    return Filter(key, operator, value, negate)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def encode_filter_groups(groups: tuple[FilterGroup, ...]) -> list[tuple[str, str]]:
    """Encode as `filter_groups[0][filters][0][key]=...` pairs, arrays as `[value][]`."""
    pairs: list[tuple[str, str]] = []
    for i, group in enumerate(groups):
        prefix = f"filter_groups[{i}]"
        pairs.append((f"{prefix}[or]", _text(group.any_of)))
        for j, flt in enumerate(group.filters):
            fp = f"{prefix}[filters][{j}]"
            pairs.append((f"{fp}[key]", flt.key))
            pairs.append((f"{fp}[operator]", flt.operator))
            if isinstance(flt.value, tuple):
                pairs.extend((f"{fp}[value][]", _text(v)) for v in flt.value)
            else:
                pairs.append((f"{fp}[value]", _text(flt.value)))
            pairs.append((f"{fp}[not]", _text(flt.negate)))
    return pairs
