"""The sandbox's export query: which pending orders `GET /v10/production-orders/export` returns, and how.

`ExportQuery.parse` reads and validates the query string (400 `BadRequest` with the reason);
`admits` applies the status flags and the filter groups (Traede's PHP-style
`filter_groups[i][filters][j][key|operator|value|not]`, groups ANDed, `or` within a group);
`page` cuts one page; `shape` keeps only the requested nested resources (`includes[]`).
Which orders are pending is the server's state (traede_local.sandbox), not the query's.

Paging modes (the real endpoint's paging is undocumented): `paged` honours `limit` (default 20,
max 60) and `page` (from 0); `all` returns every pending order; `ignore_page` honours `limit` but
always returns the first page. Results are ordered by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from traede_export.config import INCLUDABLE

PAGING_MODES = ("paged", "all", "ignore_page")
# Traede's documented values (docs/traede-api.md), stated here rather than imported from the client,
# so that a wrong limit in the client fails against the sandbox instead of agreeing with it.
DEFAULT_LIMIT = 20
MAX_LIMIT = 60
INCLUDES = INCLUDABLE  # what Traede documents as includable (config.py holds the list)
OPERATORS = frozenset({"eq", "gt", "gte", "lt", "lte", "ct", "sw", "ew", "in", "bt"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_PHP_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BadRequest(ValueError):
    """A client error answered as 400 with the message."""


@dataclass(frozen=True)
class ExportQuery:
    system_id: str
    since: datetime | None  # not_exported_since
    include_open: bool
    include_closed: bool
    limit: int
    page_number: int
    includes: frozenset[str]
    groups: tuple[dict[str, Any], ...]

    @classmethod
    def parse(cls, query: str, paging: str) -> ExportQuery:
        """The query string, validated in the order Traede's errors would come (first problem wins)."""
        params = parse_qsl(query, keep_blank_values=True)
        flat: dict[str, str] = {}
        includes: set[str] = set()
        for key, value in params:
            if key in ("includes[]", "includes"):
                includes.update(v for v in value.split(",") if v)
            elif not key.startswith("filter_groups"):
                flat[key] = value
        system_id = flat.get("system_id", "")
        if not system_id:
            raise BadRequest("system_id is required")
        unknown = includes - INCLUDES
        if unknown:
            raise BadRequest(f"unknown includes: {sorted(unknown)}")
        since = None
        if flat.get("not_exported_since"):
            since = parse_time(flat["not_exported_since"])
            if since is None:
                raise BadRequest("not_exported_since must be 'YYYY-MM-DD HH:MM:SS' or ISO-8601")
        include_open = _flag(flat, "include_open")
        include_closed = _flag(flat, "include_closed")
        limit = _int_param(flat, "limit", DEFAULT_LIMIT)
        page = _int_param(flat, "page", 0)
        if paging != "all" and not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        if page < 0:
            raise BadRequest("page starts at 0")
        groups = _parse_filter_groups([(k, v) for k, v in params if k.startswith("filter_groups")])
        return cls(system_id, since, include_open, include_closed, limit, page, frozenset(includes), tuple(groups))

    def admits(self, order: dict[str, Any]) -> bool:
        """A pending order this query returns: drafts and closed orders only when asked, every group matching."""
        if order.get("status") == "draft" and not self.include_open:
            return False
        if order.get("status") == "closed" and not self.include_closed:
            return False
        return all(_group_matches(order, g) for g in self.groups)

    def page(self, selected: list[dict[str, Any]], paging: str, server_page_size: int | None) -> list[dict[str, Any]]:
        """This query's page of `selected` (in id order); `server_page_size` is Traede's own size, if any."""
        if paging == "paged":
            size = server_page_size or self.limit
            return selected[self.page_number * size : (self.page_number + 1) * size]
        if paging == "ignore_page":
            return selected[: self.limit]
        return selected

    def shape(self, order: dict[str, Any]) -> dict[str, Any]:
        return strip_to_includes(order, set(self.includes))


def parse_time(text: str) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` or ISO-8601; naive means UTC."""
    if not text or not _ISO_DATETIME.match(text.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 0, month 13, or beyond year 9999 in UTC
        return None


def _flag(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "0").strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise BadRequest(f"{name} must be 0 or 1")


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    if name not in params or params[name] == "":
        return default
    try:
        return int(params[name])
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


def _parse_filter_groups(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rebuild PHP-style nested parameters, then validate them into plain groups."""
    tree: dict[str, Any] = {}
    for key, value in pairs:
        match = _PHP_KEY.match(key)
        if not match:
            raise BadRequest(f"malformed filter parameter {key!r}")
        segments = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: Any = tree
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if not isinstance(node, dict):
                raise BadRequest(f"malformed filter parameter {key!r}")
            if segment == "":
                raise BadRequest(f"malformed filter parameter {key!r}: '[]' is only allowed at the end")
            if last:
                if isinstance(node.get(segment), (dict, list)):
                    raise BadRequest(f"malformed filter parameter {key!r}")
                node[segment] = value
            elif depth == len(segments) - 2 and segments[-1] == "":
                existing = node.setdefault(segment, [])
                if not isinstance(existing, list):
                    raise BadRequest(f"malformed filter parameter {key!r}")
                existing.append(value)
                break
            else:
                node = node.setdefault(segment, {})
    raw = tree.get("filter_groups")
    if raw is None:
        if tree:
            raise BadRequest("malformed filter_groups")
        return []
    groups = []
    for gi, group in enumerate(_indexed(raw, "filter_groups")):
        where = f"filter_groups[{gi}]"
        if not isinstance(group, dict) or set(group) - {"or", "filters"}:
            raise BadRequest(f"{where} must have only 'or' and 'filters'")
        filters = []
        for fi, flt in enumerate(_indexed(group.get("filters"), f"{where}[filters]")):
            filters.append(_parse_filter(flt, f"{where}[filters][{fi}]"))
        if not filters:
            raise BadRequest(f"{where} has no filters")
        groups.append({"or": _bool(group.get("or", "0"), f"{where}[or]"), "filters": filters})
    return groups


def _indexed(node: Any, where: str) -> list[Any]:
    """A `{"0": x, "1": y}` node as a list, requiring contiguous indexes from 0."""
    if not isinstance(node, dict) or not node:
        raise BadRequest(f"{where} must be a non-empty indexed array")
    if not all(k.isdigit() for k in node) or sorted(int(k) for k in node) != list(range(len(node))):
        raise BadRequest(f"{where} must be indexed 0, 1, 2, ...")
    return [node[k] for k in sorted(node, key=int)]


def _bool(value: Any, where: str) -> bool:
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise BadRequest(f"{where} must be 0 or 1")


def _parse_filter(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - {"key", "operator", "value", "not"}:
        raise BadRequest(f"{where} must have key, operator, value and optional not")
    key, operator, value = raw.get("key"), raw.get("operator"), raw.get("value")
    if not isinstance(key, str) or not _FIELD.match(key):
        raise BadRequest(f"{where}[key] must be a field name")
    if operator not in OPERATORS:
        raise BadRequest(f"{where}[operator] must be one of {sorted(OPERATORS)}")
    if operator in ("in", "bt"):
        if not isinstance(value, list) or not value:
            raise BadRequest(f"{where}: operator {operator} needs an array value ([value][]=...)")
        if operator == "bt" and len(value) != 2:
            raise BadRequest(f"{where}: operator bt needs exactly two values")
        value = [_normalise(v) for v in value]
    elif not isinstance(value, str):
        raise BadRequest(f"{where}[value] must be a single value")
    else:
        value = _normalise(value)
    return {"key": key, "operator": operator, "value": value, "not": _bool(raw.get("not", "0"), f"{where}[not]")}


def _normalise(value: str) -> str:
    # Dates compare as `YYYY-MM-DD HH:MM:SS` strings, so bring ISO-8601 values into that form.
    parsed = parse_time(value)
    return parsed.strftime(TIME_FORMAT) if parsed is not None and "T" in value else value


def _group_matches(order: dict[str, Any], group: dict[str, Any]) -> bool:
    results = (_filter_matches(order, f) for f in group["filters"])
    return any(results) if group["or"] else all(results)


def _filter_matches(order: dict[str, Any], flt: dict[str, Any]) -> bool:
    matched = _compare(order.get(flt["key"]), flt["operator"], flt["value"])
    return matched != bool(flt["not"])


def _comparable(field: Any, value: str) -> tuple[Any, Any]:
    # Numbers compare as numbers when both sides are numeric, everything else as strings.
    if isinstance(field, (int, float)) and not isinstance(field, bool):
        try:
            return float(field), float(value)
        except ValueError:
            pass
    if isinstance(field, bool):
        return ("1" if field else "0"), value
    return str(field), value


def _compare(field: Any, operator: str, value: Any) -> bool:
    if field is None or isinstance(field, (dict, list)):
        return False
    if operator == "in":
        return any(_comparable(field, v)[0] == _comparable(field, v)[1] for v in value)
    if operator == "bt":
        low, high = _comparable(field, value[0]), _comparable(field, value[1])
        return bool(low[1] <= low[0] and high[0] <= high[1])
    if operator in ("ct", "sw", "ew"):  # LIKE-style: case-insensitive
        text, needle = str(field).lower(), value.lower()
        if operator == "ct":
            return needle in text
        return text.startswith(needle) if operator == "sw" else text.endswith(needle)
    left, right = _comparable(field, value)
    return bool(
        {
            "eq": left == right,
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[operator]
    )


def strip_to_includes(order: dict[str, Any], includes: set[str]) -> dict[str, Any]:
    """A copy of the order with only the requested nested resources.

    Containers on the path to anything removed are copied; the leaves are shared, which is safe
    because the sandbox only ever replaces stored values, never mutates nested ones in place.
    """
    out = dict(order)
    for name in ("supplier", "deliveryNotes"):
        if name not in includes:
            out.pop(name, None)
    if "lines" in out:
        if includes & {"lines", "lines.product", "lines.variant"}:
            out["lines"] = [_strip_line(line, includes, "lines.") for line in out["lines"]]
        else:
            del out["lines"]
    if "salesOrders" in out:
        if any(i.startswith("salesOrders") for i in includes):
            out["salesOrders"] = [_strip_sales_order(so, includes) for so in out["salesOrders"]]
        else:
            del out["salesOrders"]
    return out


def _strip_line(line: Any, includes: set[str], prefix: str) -> Any:
    if not isinstance(line, dict):
        return line
    return {k: v for k, v in line.items() if k not in ("product", "variant") or prefix + k in includes}


def _strip_sales_order(sales_order: Any, includes: set[str]) -> Any:
    if not isinstance(sales_order, dict):
        return sales_order
    out = {k: v for k, v in sales_order.items() if k not in ("delivery", "shop") or f"salesOrders.{k}" in includes}
    if "lines" in out:
        if includes & {"salesOrders.lines", "salesOrders.lines.product", "salesOrders.lines.variant"}:
            out["lines"] = [_strip_line(line, includes, "salesOrders.lines.") for line in out["lines"]]
        else:
            del out["lines"]
    return out
