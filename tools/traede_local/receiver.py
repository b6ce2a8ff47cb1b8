"""A local receiving system (an ERP stand-in): `POST /orders` (or `PUT /orders/...`) with JSON.

By default the body must be Traede's production order (an object with an integer `id`). With
`expect_order=False` (the forwarder maps orders into the ERP's own shape) any JSON object or
array is accepted and the order is identified by its Idempotency-Key
(`traede:<system>:<order id>:...`), so every check below works the same in both modes.

Order of checks per request: `latency` sleep, then `required_headers` (401; a request that fails
auth is never faulted, as in the Traede sandbox), then the injected fault, then validation (400),
permanent rejection of `reject_ids` (422), `forbidden_ids` (403, quoting the credentials the request
carried, as careless ERPs do: "API key ... has no access"), and the duplicate check (409, only with
`conflict_on_duplicate`); otherwise the order is stored and answered 201 with the ERP's own
document number for it, in the body (`{"ok": true, "id": <order id>, "document_number": "ERP-000001"}`)
and in `Location` (`<url>/ERP-000001`), as ERPs answer a created purchase order; an order in
`bare_ids` is stored and answered 201 with neither (a plain-text body). The fault
`accepted_but_502` stores the order and then answers 502: the ambiguous outcome a client must
resolve with its Idempotency-Key.

Two modes model edges of real ERPs: `redirect = (status, location)` answers every request with
that redirect (a moved endpoint, a trailing-slash or login redirect), before anything else; and
`in_progress_seconds` models the IETF Idempotency-Key draft (and Stripe): the first request with
a key stays "in progress" that long and then fails without storing (503), and any request with
the same key meanwhile gets 409, which therefore does NOT mean "already stored".
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traede_local.faults import (
    ACCEPTED_BUT_502,
    LocalServer,
    ReceiverFaults,
    Reply,
    Request,
    Text,
    fault_reply,
    redirect_reply,
)

ORDERS_PATH = "/orders"


@dataclass(frozen=True)
class Delivery:
    order_id: int
    idempotency_key: str
    headers: dict[str, str]
    body: Any  # the order itself, or the mapped body with expect_order=False
    status: int
    method: str = "POST"
    path: str = ORDERS_PATH
    document: str = ""  # the ERP's own number for what it stored ("" when answered bare)


@dataclass(frozen=True)
class Attempt:
    """One request as it arrived, whatever the answer: how a test sees what every retry carried."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    status: int  # as answered; 0 when the connection was dropped


class ReceivingSystem(LocalServer):
    def __init__(
        self,
        store_dir: Path | None = None,
        faults: ReceiverFaults | None = None,
        reject_ids: Set[int] = frozenset(),
        required_headers: dict[str, str] | None = None,
        conflict_on_duplicate: bool = False,
        expect_order: bool = True,
    ) -> None:
        super().__init__()
        self.expect_order = expect_order
        self.store_dir = store_dir
        self.faults = faults or ReceiverFaults()
        self.reject_ids = set(reject_ids)
        self.fail_ids: set[int] = set()  # answered 503 every time: a transient failure that never clears
        self.forbidden_ids: set[int] = set()  # answered 403, quoting the request's credential headers
        self.bare_ids: set[int] = set()  # stored, but answered without a document number (text body, no Location)
        self.delays: dict[str, float] = {}  # Idempotency-Key -> seconds to wait before storing (a slow write)
        self._attempts_by_order: dict[int, int] = {}
        self.required_headers = dict(required_headers or {})
        self.conflict_on_duplicate = conflict_on_duplicate
        self.redirect: tuple[int, str] | None = None
        self.in_progress_seconds = 0.0
        self.conflicts = 0  # 409 answers
        self._in_progress: set[str] = set()
        self._seen_keys: set[str] = set()  # keys whose first request was held in progress
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []  # every accepted store, including accepted-but-502
        self.ambiguous = 0  # accepted-but-502 answers
        self.attempts = 0  # every request received (counted on arrival, before any latency or fault)
        self.requests: list[Attempt] = []  # every request, recorded once answered
        self._accepted_keys: set[str] = set()
        if store_dir is not None:
            store_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return self._base_url() + ORDERS_PATH

    def start(self) -> str:
        return super().start() + ORDERS_PATH

    def delivered_ids(self) -> set[int]:
        with self._lock:
            return {d.order_id for d in self.deliveries}

    def keys_by_order(self) -> dict[int, set[str]]:
        with self._lock:
            keys: dict[int, set[str]] = {}
            for d in self.deliveries:
                keys.setdefault(d.order_id, set()).add(d.idempotency_key)
            return keys

    def attempts_for(self, order_id: int) -> int:
        """POSTs that reached the order checks for this order (faulted requests excluded)."""
        with self._lock:
            return self._attempts_by_order.get(order_id, 0)

    def duplicates(self) -> int:
        """Accepted stores beyond the first per order (0 means exactly-once held)."""
        with self._lock:
            return len(self.deliveries) - len({d.order_id for d in self.deliveries})

    def dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.attempts += 1
        reply = self._answer(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(Attempt(request.method, request.path, headers, 0 if reply.drop else reply.status))
        return reply

    def _answer(self, request: Request) -> Reply:
        if self.faults.latency > 0:
            threading.Event().wait(self.faults.latency)
        if self.redirect is not None:
            return redirect_reply(*self.redirect)
        if request.path != ORDERS_PATH and not request.path.startswith(ORDERS_PATH + "/"):
            return Reply(404, {"error": f"no route {request.path}"})
        if request.method not in ("POST", "PUT"):
            return Reply(405, {"error": f"{request.method} not allowed"})
        headers = {k.lower(): v for k, v in request.headers.items()}
        for name, expected in self.required_headers.items():
            if headers.get(name.lower()) != expected:
                return Reply(401, {"error": "unauthenticated", "message": f"missing or wrong {name} header"})
        fault = self.faults.pick()
        if fault is not None and fault != ACCEPTED_BUT_502:
            reply = fault_reply(fault, self.faults)
            if reply is not None:
                return reply
        key = headers.get("idempotency-key", "")
        if not key:
            return Reply(400, {"error": "bad_request", "message": "Idempotency-Key header is required"})
        if self.in_progress_seconds > 0:
            held = self._hold_first_request(key)
            if held is not None:
                return held
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply(400, {"error": "bad_request", "message": "body must be JSON"})
        order_id, problem = self._identify(body, key)
        if order_id is None:
            return Reply(400, {"error": "bad_request", "message": problem})
        with self._lock:
            self._attempts_by_order[order_id] = self._attempts_by_order.get(order_id, 0) + 1
        if order_id in self.fail_ids:
            return Reply(503, {"error": "unavailable", "message": f"order {order_id} cannot be stored right now"})
        if order_id in self.forbidden_ids:
            quoted = ", ".join(f"{name} {headers.get(name.lower())}" for name in self.required_headers)
            return Reply(403, {"error": "forbidden", "message": f"{quoted} has no access to order {order_id}"})
        if order_id in self.reject_ids:
            return Reply(422, {"error": "rejected", "reason": f"order {order_id} is not valid for this system"})
        if key in self.delays:
            threading.Event().wait(self.delays[key])
        status = 502 if fault == ACCEPTED_BUT_502 else 201
        with self._lock:
            if self.conflict_on_duplicate and key in self._accepted_keys:
                return Reply(409, {"error": "conflict", "message": f"Idempotency-Key {key} was already accepted"})
            self._accepted_keys.add(key)
            bare = order_id in self.bare_ids
            document = "" if bare else f"ERP-{len(self.deliveries) + 1:06d}"
            self.deliveries.append(
                Delivery(order_id, key, dict(request.headers), body, status, request.method, request.path, document)
            )
            if status == 502:
                self.ambiguous += 1
            self._write(order_id, request.body)
        if status == 502:
            return Reply(502, {"error": "bad gateway"})
        if bare:
            return Reply(201, Text("stored"))
        return Reply(
            201, {"ok": True, "id": order_id, "document_number": document}, {"Location": f"{self.url}/{document}"}
        )

    def _hold_first_request(self, key: str) -> Reply | None:
        """The IETF draft's in-progress state: see the module docstring."""
        with self._lock:
            if key in self._in_progress:
                self.conflicts += 1
                return Reply(409, {"error": "conflict", "message": "a request with this key is in progress"})
            if key in self._seen_keys:
                return None
            self._seen_keys.add(key)
            self._in_progress.add(key)
        try:
            threading.Event().wait(self.in_progress_seconds)
        finally:
            with self._lock:
                self._in_progress.discard(key)
        return Reply(503, {"error": "unavailable", "message": "processing failed; nothing was stored"})

    def _identify(self, body: Any, key: str) -> tuple[int | None, str]:
        """The order a request is about, or None and why the request is bad."""
        if self.expect_order:
            order_id = body.get("id") if isinstance(body, dict) else None
            if not isinstance(order_id, int) or isinstance(order_id, bool):
                return None, "body must be an order with an integer id"
            return order_id, ""
        if not isinstance(body, dict | list):
            return None, "body must be a JSON object or array"
        parts = key.split(":")
        if len(parts) < 4 or parts[0] != "traede" or not parts[2].isdigit():
            return None, "Idempotency-Key must look like traede:<system>:<order id>:<version>"
        return int(parts[2]), ""

    def _write(self, order_id: int, raw: bytes) -> None:
        if self.store_dir is None:
            return
        # Write-then-rename so a reader never sees a half-written file.
        target = self.store_dir / f"{order_id}.json"
        tmp = target.with_suffix(f".json.tmp{threading.get_ident()}")
        tmp.write_bytes(raw)
        os.replace(tmp, target)
