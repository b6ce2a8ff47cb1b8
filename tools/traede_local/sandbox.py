"""A local stand-in for Traede's production-order Export API (see docs/traede-api.md): the HTTP server.

Endpoints: `GET /v10/production-orders/export` and `POST /v10/production-orders/mark-as-exported`,
both requiring `Authorization: Bearer <access token>` and `X-Traede-App-Key: <app key>` headers
(the `access_token=` query parameter is deliberately NOT accepted: it leaks into logs).

Pending rule, tracked per `system_id`: an order is pending for a system if it was never marked
exported to that system, or it was updated after its last export to that system; with
`not_exported_since`, also if its last export to that system is older than that instant.
"Updated" uses the instant the order last changed in the sandbox: its `updated_at`, capped at the
moment it was loaded (seeded 2026 dates may lie in the future), or the precise time of `edit()`.
Export times are recorded with microsecond precision, so mark-then-edit within one second works.

What an export request selects among the pending orders (status flags, filter groups, paging,
includes) is traede_local.export_query; the seeded orders are traede_local.seed.

Faults (`Faults`) apply to every authenticated request before any work; a request that fails
auth always gets its 401. `redirect = (status, location)` answers every request with that redirect.
`credentials_expired` answers every request 401, quoting the token and app key it carried.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from traede_local.export_query import PAGING_MODES, TIME_FORMAT, BadRequest, ExportQuery, parse_time
from traede_local.faults import Faults, LocalServer, Reply, Request, fault_reply, redirect_reply

EXPORT_PATH = "/v10/production-orders/export"
MARK_PATH = "/v10/production-orders/mark-as-exported"
# Traede's documented value (docs/traede-api.md), stated here rather than imported from the client.
MAX_MARK_ITEMS = 10


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
        # Export entries that are no production order (no integer id): at the head of every page, and
        # pending for ever, since nothing can mark them.
        self.malformed: list[Any] = []
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
                stamp = parse_time(str(order.get("updated_at") or "")) or loaded
                self._changed[order_id] = min(stamp, loaded)

    def edit(self, order_id: int) -> str:
        """Touch an order: a new, later `updated_at`, which makes it pending for every system again."""
        with self._lock:
            order = self._orders[order_id]
            now = self._now()
            previous = parse_time(str(order.get("updated_at") or ""))
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
        q = ExportQuery.parse(query, self.paging)
        with self._lock:
            exports = self._exports.get(q.system_id, {})
            selected = [
                self._orders[oid]
                for oid in sorted(self._orders)
                if self._is_pending(oid, exports, q.since) and q.admits(self._orders[oid])
            ]
            page_orders = [q.shape(order) for order in q.page(selected, self.paging, self.server_page_size)]
            page_orders = copy.deepcopy(self.malformed) + page_orders
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
