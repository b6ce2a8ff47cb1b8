"""A local stand-in for Traede's production-order Export API (see docs/traede-api.md).

Endpoints: `GET /v10/production-orders/export` and `POST /v10/production-orders/mark-as-exported`,
both requiring `Authorization: Bearer <access token>` and `X-Traede-App-Key: <app key>` headers
(the `access_token=` query parameter is deliberately NOT accepted: it leaks into logs).

Pending rule, tracked per `system_id`: an order is pending for a system if it was never marked
exported to that system, or it was updated after its last export to that system; with
`not_exported_since`, also if its last export to that system is older than that instant.
"Updated" uses the instant the order last changed in the sandbox: its `updated_at`, capped at the
moment it was loaded (seeded 2026 dates may lie in the future), or the precise time of `edit()`.
Export times are recorded with microsecond precision, so mark-then-edit within one second works.

Paging modes (the real endpoint's paging is undocumented): `paged` honours `limit` (default 20,
max 60) and `page` (from 0); `all` returns every pending order; `ignore_page` honours `limit` but
always returns the first page. Results are ordered by id.

Faults (`Faults`) apply to every authenticated request before any work; a request that fails
auth always gets its 401. `redirect = (status, location)` answers every request with that redirect.
`credentials_expired` answers every request 401, quoting the token and app key it carried.
"""

from __future__ import annotations

import copy
import json
import random
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from traede_local.faults import Faults, LocalServer, Reply, Request, fault_reply, redirect_reply

EXPORT_PATH = "/v10/production-orders/export"
MARK_PATH = "/v10/production-orders/mark-as-exported"
PAGING_MODES = ("paged", "all", "ignore_page")
# Traede's documented values (docs/traede-api.md), stated here rather than imported from the client,
# so that a wrong limit in the client fails against the sandbox instead of agreeing with it.
DEFAULT_LIMIT = 20
MAX_LIMIT = 60
MAX_MARK_ITEMS = 10
INCLUDES = frozenset(
    {
        "deliveryNotes",
        "lines",
        "lines.product",
        "lines.variant",
        "salesOrders",
        "salesOrders.delivery",
        "salesOrders.lines",
        "salesOrders.lines.product",
        "salesOrders.lines.variant",
        "salesOrders.shop",
        "supplier",
    }
)
OPERATORS = frozenset({"eq", "gt", "gte", "lt", "lte", "ct", "sw", "ew", "in", "bt"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_PHP_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def wall_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """Traede's time, moved only by the test, so it can step past Traede's whole seconds without sleeping.

    It starts at a whole second a day ago, so an instant read from it is never in the future for
    the poller, which refuses a `not_exported_since` that is.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now


class BadRequest(ValueError):
    """A client error answered as 400 with the message."""


class TraedeSandbox(LocalServer):
    def __init__(
        self,
        orders: list[dict[str, Any]],
        access_token: str,
        app_key: str,
        faults: Faults | None = None,
        paging: str = "paged",
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        super().__init__()
        self.clock = clock
        if paging not in PAGING_MODES:
            raise ValueError(f"paging must be one of {PAGING_MODES}, not {paging!r}")
        self.access_token = access_token
        self.app_key = app_key
        self.faults = faults or Faults()
        self.paging = paging
        self.server_page_size: int | None = None  # "paged": Traede's own page size, whatever `limit` says
        self._lock = threading.RLock()
        self._orders: dict[int, dict[str, Any]] = {}
        self._changed: dict[int, datetime] = {}  # when each order last changed (see module docstring)
        self._exports: dict[str, dict[int, datetime]] = {}  # system_id -> order id -> last export
        self._last_now = datetime.min.replace(tzinfo=UTC)
        self.export_calls = 0  # export requests answered 200
        self.mark_calls: list[list[int]] = []  # order ids of each successful mark call
        self.mark_attempts = 0  # authenticated mark requests, including faulted ones
        self.notes: dict[int, str] = {}
        self.requests_log: list[dict[str, Any]] = []
        self.redirect: tuple[int, str] | None = None  # (status, Location) for every request: a moved API
        self.credentials_expired = False  # 401 for every request, quoting its credentials
        self.add_orders(orders)

    @property
    def url(self) -> str:
        return self._base_url()

    # --- state helpers for tests -------------------------------------------------------------

    def _now(self) -> datetime:
        # Strictly increasing, so an edit always lands after an earlier mark and vice versa.
        with self._lock:
            now = max(self.clock(), self._last_now + timedelta(microseconds=1))
            self._last_now = now
            return now

    def add_orders(self, orders: Iterable[dict[str, Any]]) -> None:
        """Add (or replace) orders; each needs an integer `id`."""
        with self._lock:
            loaded = self._now()
            for order in orders:
                order_id = order["id"]
                if not isinstance(order_id, int) or isinstance(order_id, bool):
                    raise ValueError(f"order id must be an int, not {order_id!r}")
                self._orders[order_id] = copy.deepcopy(order)
                stamp = _parse_time(str(order.get("updated_at") or "")) or loaded
                self._changed[order_id] = min(stamp, loaded)

    def edit(self, order_id: int) -> str:
        """Touch an order: a new, later `updated_at`, which makes it pending for every system again."""
        with self._lock:
            order = self._orders[order_id]
            now = self._now()
            previous = _parse_time(str(order.get("updated_at") or ""))
            stamp = now.replace(microsecond=0)
            if previous is not None and stamp <= previous:
                stamp = previous + timedelta(seconds=1)  # the visible field must move forward too
            order["updated_at"] = stamp.strftime(TIME_FORMAT)
            self._changed[order_id] = now
            return str(order["updated_at"])

    def delete(self, order_id: int) -> None:
        """Remove an order, as a user deleting it in Traede: marking it then fails."""
        with self._lock:
            del self._orders[order_id]
            self._changed.pop(order_id, None)

    def exported(self, system_id: str) -> set[int]:
        """Ids ever marked exported to `system_id` (whether or not pending again since)."""
        with self._lock:
            return set(self._exports.get(system_id, {}))

    def pending(self, system_id: str) -> list[int]:
        """Ids the export would return with the default flags (drafts and closed left out), in id order."""
        with self._lock:
            exports = self._exports.get(system_id, {})
            return [
                oid
                for oid in sorted(self._orders)
                if self._is_pending(oid, exports, None) and self._orders[oid].get("status") not in ("draft", "closed")
            ]

    def order_list(self) -> list[dict[str, Any]]:
        """Every order as stored (all fields), sorted by id."""
        with self._lock:
            return [copy.deepcopy(self._orders[i]) for i in sorted(self._orders)]

    def order(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[order_id])

    def _is_pending(self, order_id: int, exports: dict[int, datetime], since: datetime | None) -> bool:
        last = exports.get(order_id)
        if last is None or self._changed[order_id] > last:
            return True
        return since is not None and last < since

    # --- HTTP ---------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        reply = self._route(request)
        with self._lock:
            self.requests_log.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": dict(request.headers),
                    "status": None if reply.drop else reply.status,
                    "dropped": reply.drop,
                }
            )
        return reply

    def _route(self, request: Request) -> Reply:
        if self.redirect is not None:
            return redirect_reply(*self.redirect)
        routes = {EXPORT_PATH: "GET", MARK_PATH: "POST"}
        if request.path not in routes:
            return Reply(404, {"error": f"no route {request.path}"})
        if request.method != routes[request.path]:
            return Reply(405, {"error": f"{request.method} not allowed on {request.path}"})
        if self.credentials_expired:
            lower = {k.lower(): v for k, v in request.headers.items()}
            auth, key = lower.get("authorization"), lower.get("x-traede-app-key")
            return Reply(401, {"error": "unauthenticated", "message": f"{auth} with app key {key} has expired"})
        if not self._authorised(request.headers):
            return Reply(401, {"error": "unauthenticated", "message": "a valid bearer token and app key are required"})
        is_export = request.path == EXPORT_PATH
        if not is_export:
            with self._lock:
                self.mark_attempts += 1
        fault = self.faults.pick()
        if fault is not None:
            reply = fault_reply(fault, self.faults)
            if reply is not None:
                return reply
        try:
            return self._export(request.query) if is_export else self._mark(request.body)
        except BadRequest as exc:
            return Reply(400, {"error": "bad_request", "message": str(exc)})

    def _authorised(self, headers: dict[str, str]) -> bool:
        lower = {k.lower(): v for k, v in headers.items()}
        return (
            lower.get("authorization") == f"Bearer {self.access_token}"
            and lower.get("x-traede-app-key") == self.app_key
        )

    def _export(self, query: str) -> Reply:
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
            since = _parse_time(flat["not_exported_since"])
            if since is None:
                raise BadRequest("not_exported_since must be 'YYYY-MM-DD HH:MM:SS' or ISO-8601")
        include_open = _flag(flat, "include_open")
        include_closed = _flag(flat, "include_closed")
        limit = _int_param(flat, "limit", DEFAULT_LIMIT)
        page = _int_param(flat, "page", 0)
        if self.paging != "all" and not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        if page < 0:
            raise BadRequest("page starts at 0")
        groups = _parse_filter_groups([(k, v) for k, v in params if k.startswith("filter_groups")])

        with self._lock:
            exports = self._exports.get(system_id, {})
            selected = []
            for oid in sorted(self._orders):
                order = self._orders[oid]
                if not self._is_pending(oid, exports, since):
                    continue
                if order.get("status") == "draft" and not include_open:
                    continue
                if order.get("status") == "closed" and not include_closed:
                    continue
                if all(_group_matches(order, g) for g in groups):
                    selected.append(order)
            if self.paging == "paged":
                size = self.server_page_size or limit
                selected = selected[page * size : (page + 1) * size]
            elif self.paging == "ignore_page":
                selected = selected[:limit]
            page_orders = [_strip(order, includes) for order in selected]
            self.export_calls += 1
        return Reply(200, {"production_orders": page_orders})

    def _mark(self, body: bytes) -> Reply:
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest("body must be JSON") from None
        items = data.get("production_orders") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise BadRequest("body must be {'production_orders': [...]} with at least one item")
        if len(items) > MAX_MARK_ITEMS:
            return Reply(422, {"error": "unprocessable", "message": f"at most {MAX_MARK_ITEMS} production orders"})
        marks: list[tuple[int, str, str | None]] = []
        for i, item in enumerate(items):
            oid = item.get("production_order_id") if isinstance(item, dict) else None
            system_id = item.get("system_id") if isinstance(item, dict) else None
            note = item.get("note") if isinstance(item, dict) else None
            if not isinstance(oid, int) or isinstance(oid, bool):
                raise BadRequest(f"item {i}: production_order_id must be an integer")
            if not isinstance(system_id, str) or not system_id:
                raise BadRequest(f"item {i}: system_id must be a non-empty string")
            if note is not None and not isinstance(note, str):
                raise BadRequest(f"item {i}: note must be a string")
            marks.append((oid, system_id, note))
        with self._lock:
            missing = sorted({oid for oid, _, _ in marks if oid not in self._orders})
            if missing:  # all or nothing, like the documented "any non-2xx fails the whole call"
                return Reply(404, {"error": "not_found", "message": f"unknown production orders: {missing}"})
            now = self._now()
            for oid, system_id, note in marks:
                self._exports.setdefault(system_id, {})[oid] = now
                if note is not None:
                    self.notes[oid] = note
            self.mark_calls.append([oid for oid, _, _ in marks])
        return Reply(200, {"ok": True})


# --- query parsing and filters ----------------------------------------------------------------


def _parse_time(text: str) -> datetime | None:
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
    parsed = _parse_time(value)
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


def _strip(order: dict[str, Any], includes: set[str]) -> dict[str, Any]:
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


# --- seed data ----------------------------------------------------------------------------------

_SUPPLIERS = [
    ("Nordic Knitwear Mill", "PT"),
    ("Atlas Denim Works", "TR"),
    ("Linea Tessile Como", "IT"),
    ("Baltic Linen Co.", "LT"),
    ("Porto Shoe Factory", "PT"),
    ("Anatolia Cotton Textiles", "TR"),
    ("Dhaka Garment House", "BD"),
    ("Ho Chi Minh Outerwear", "VN"),
]
_PRODUCTS = [
    ("Merino Crew Neck", "Core"),
    ("Wide Leg Denim", "AW26"),
    ("Linen Shirt", "SS26"),
    ("Wool Overcoat", "AW26"),
    ("Organic Cotton Tee", "Core"),
    ("Pleated Midi Skirt", "SS26"),
    ("Leather Chelsea Boot", "AW26"),
    ("Cashmere Scarf", "AW26"),
    ("Puffer Jacket", "AW26"),
    ("Chino Trousers", "SS26"),
]
_COLORS = ["Black", "Navy", "Ecru", "Camel", "Forest Green", "Grey Melange", "Rust"]
_SIZES = ["XS", "S", "M", "L", "XL"]
_SHOPS = ["Copenhagen Flagship", "Webshop DK", "Stockholm Store", "Wholesale B2B"]


FIRST_ID = 1001


def seed_orders(count: int, seed: int = 1, start_id: int = FIRST_ID) -> list[dict[str, Any]]:
    """Deterministic, realistic production orders dated in 2026 (no secret-looking strings)."""
    rng = random.Random(seed)
    orders = []
    for i in range(count):
        order_id = start_id + i
        # Fixed positions guarantee a few drafts and closed orders even in small sets.
        status = "draft" if i % 10 == 3 else "closed" if i % 10 == 7 else rng.choice(["confirmed", "in_production"])
        created = datetime(2026, 1, 5, 8, 0, 0) + timedelta(days=rng.randint(0, 250), seconds=rng.randint(0, 36000))
        updated = created + timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 30000))
        delivery = created + timedelta(days=rng.randint(30, 120))
        supplier_index = rng.randrange(len(_SUPPLIERS))
        supplier_name, country = _SUPPLIERS[supplier_index]
        lines: list[dict[str, Any]] = []
        for n in range(rng.randint(1, 4)):
            product_index = rng.randrange(len(_PRODUCTS))
            name, collection = _PRODUCTS[product_index]
            color, size = rng.choice(_COLORS), rng.choice(_SIZES)
            lines.append(
                {
                    "id": order_id * 10 + n,
                    "sku": f"{collection}-{500 + product_index}-{color[:3].upper()}-{size}",
                    "quantity": rng.choice([24, 48, 60, 96, 120, 250, 500]),
                    "unit_cost": round(rng.uniform(4.5, 95.0), 2),
                    "product": {"id": 500 + product_index, "name": name, "collection": collection},
                    "variant": {"id": (500 + product_index) * 100 + _SIZES.index(size), "color": color, "size": size},
                }
            )
        sales_orders: list[dict[str, Any]] = []
        if rng.random() < 0.3:
            line = lines[0]
            sales_orders.append(
                {
                    "id": 70000 + order_id,
                    "order_number": f"SO-{70000 + order_id}",
                    "delivery": {"id": 90000 + order_id, "date": delivery.strftime("%Y-%m-%d")},
                    "shop": {"id": 30 + i % len(_SHOPS), "name": _SHOPS[i % len(_SHOPS)]},
                    "lines": [
                        {
                            "id": 80000 + order_id,
                            "sku": line["sku"],
                            "quantity": 12,
                            "product": dict(line["product"]),
                            "variant": dict(line["variant"]),
                        }
                    ],
                }
            )
        orders.append(
            {
                "id": order_id,
                "order_number": f"PO-{order_id}",
                "status": status,
                "currency": rng.choice(["DKK", "EUR", "SEK", "NOK"]),
                "created_at": created.strftime(TIME_FORMAT),
                "updated_at": updated.strftime(TIME_FORMAT),
                "delivery_date": delivery.strftime("%Y-%m-%d"),
                "supplier_id": 200 + supplier_index,
                "supplier": {"id": 200 + supplier_index, "name": supplier_name, "country": country},
                "lines": lines,
                "deliveryNotes": [],
                "salesOrders": sales_orders,
            }
        )
    return orders


LARGE_ORDER_BYTES = 1_572_864  # about 1.5 MiB: over SQS's 1 MiB message limit, as a big production order


def seed_large_orders(count: int, start_id: int, seed: int = 1, size: int = LARGE_ORDER_BYTES) -> list[dict[str, Any]]:
    """Orders of just under `size` bytes of JSON: an ordinary seeded order with lines added up to that size."""
    orders = seed_orders(count, seed=seed, start_id=start_id)
    for order in orders:
        order["status"] = "confirmed"  # exported by default
        order["salesOrders"] = []  # the export may leave them out; the size is the lines'
        line = order["lines"][0]
        lines = [{**line, "id": order["id"] * 100_000 + n, "quantity": 100 + n % 400} for n in range(size // 200)]
        room = size - len(json.dumps(order))
        kept = 0
        for extra in lines:
            room -= len(json.dumps(extra)) + 2  # ", " between list items
            if room < 0:
                break
            kept += 1
        order["lines"] = order["lines"] + lines[:kept]
    return orders
