"""Client for the receiving system: send one order as JSON under an Idempotency-Key.

The request's shape (method, URL placeholders, static headers, a mapping of the body) is
built here; an order that cannot be shaped is a permanent, per-order rejection. The ERP's own
reference for an accepted order (TARGET_REFERENCE, a JSONata expression on its 2xx answer) is
read here too; one that cannot be read never fails the delivery.
"""

from __future__ import annotations

import contextlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from traede_export.errors import ConfigurationError, MappingError, RequestError
from traede_export.http import describe_redirect, header_value_problem
from traede_export.mapping import Bindings, Expression, OrderMapping
from traede_export.redact import excerpt, mask


class Outcome(StrEnum):
    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"  # 409 Conflict, only when opted in
    REJECTED = "rejected"  # permanent: retrying cannot help
    FAILED = "failed"  # transient: the queue will bring it back


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    reason: str
    status: int | None = None
    reference: str | None = None  # the ERP's own reference for the order, read from its 2xx answer
    reference_problem: str = ""  # why TARGET_REFERENCE gave none for this answer ("" if none was asked for)

    def __post_init__(self) -> None:
        # The reason travels to the logs, the DLQ and the ledger: an ERP's answer may quote our credentials.
        object.__setattr__(self, "reason", mask(self.reason))
        object.__setattr__(self, "reference_problem", mask(self.reference_problem))
        if self.reference is not None:
            object.__setattr__(self, "reference", mask(self.reference))

    @property
    def accepted(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.ALREADY_DELIVERED)

    @property
    def refuses_version(self) -> bool:
        """A refusal of this order's content, remembered per version; not a configuration error.

        401/403/407 (credentials), 3xx (URL), 404/405 (endpoint, method), 415 (the body's type),
        421 (a host this server does not serve), 426 (http where https is wanted) and 431 (our
        headers) are the same for every order: once an operator fixes them the version must go
        again, so they are not remembered.
        """
        if self.outcome is not Outcome.REJECTED:
            return False
        return self.status is None or (self.status not in CONFIGURATION_STATUSES and not 300 <= self.status < 400)


TRANSIENT_4XX = frozenset({408, 429})
CONFIGURATION_STATUSES = frozenset({401, 403, 404, 405, 407, 415, 421, 426, 431})


class TargetClient:
    def __init__(
        self,
        session: requests.Session,
        url: str,
        timeout: tuple[float, float],  # (connect, read): config.HttpSettings holds the defaults
        conflict_is_delivered: bool = False,
        shape: RequestShape | None = None,
        reference: ReferenceExpression | None = None,
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = timeout
        self._conflict_is_delivered = conflict_is_delivered
        self._shape = shape or RequestShape()
        self._reference = reference

    def deliver(self, body: str, idempotency_key: str, reexport_since: str | None = None) -> DeliveryResult:
        # An odd character from the order or the message fails this record alone (retrying cannot help).
        problem = header_value_problem(idempotency_key)
        if problem:
            return DeliveryResult(Outcome.REJECTED, f"cannot send: the Idempotency-Key {problem}")
        try:
            request = build_request(self._url, self._shape, body, idempotency_key, reexport_since)
        except RequestError as exc:
            return DeliveryResult(Outcome.REJECTED, str(exc))
        try:
            response = self._session.request(
                request.method, request.url, data=request.body, headers=request.headers, timeout=self._timeout
            )
        except ValueError as exc:
            # InvalidURL, InvalidHeader, InvalidProxyURL...: what the order brings (the key, the
            # placeholder values) was checked above, so the setup is wrong, for every order alike.
            # Never str(exc): it may quote the URL or a header value.
            raise ConfigurationError(
                f"cannot send to the receiving system: requests refused the request ({type(exc).__name__});"
                " check TARGET_URL, TARGET_STATIC_HEADERS, the target secret and any proxy variables"
            ) from None
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.FAILED, f"no answer from receiving system: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            if self._reference is None:
                return DeliveryResult(Outcome.DELIVERED, f"HTTP {status}", status)
            found = self._reference.evaluate(answer_document(status, response.headers, response.text))
            return DeliveryResult(Outcome.DELIVERED, f"HTTP {status}", status, found.text, found.problem)
        if 300 <= status < 400:
            # Permanent until an operator fixes the URL; never followed (see http.NoRedirectSession).
            reason = f"{describe_redirect(response)}; redirects are never followed: set TARGET_URL to the final address"
            return DeliveryResult(Outcome.REJECTED, reason, status)
        if status == 409:
            if self._conflict_is_delivered:  # opted in: this ERP's 409 means "already stored"
                return DeliveryResult(Outcome.ALREADY_DELIVERED, "HTTP 409: already delivered", status)
            # IETF Idempotency-Key draft: a request with this key is still in progress. Not proof of storage.
            reason = "HTTP 409: a request with this Idempotency-Key is still in progress; not proof of delivery"
            return DeliveryResult(Outcome.FAILED, reason, status)
        detail = f"HTTP {status}: {excerpt(response.text)}"
        if 400 <= status < 500 and status not in TRANSIENT_4XX:
            return DeliveryResult(Outcome.REJECTED, detail, status)
        return DeliveryResult(Outcome.FAILED, detail, status)


# ------------------------------------------------------------------------ the ERP's reference

MAX_REFERENCE_CHARS = 100  # a document number, not a document: Traede shows it in the order's timeline
# What the cold start runs the expression on, as an ERP answers (an unknown function only fails when it runs).
SAMPLE_ANSWER: dict[str, Any] = {
    "status": 201,
    "headers": {"content-type": "application/json", "location": "https://erp.example.com/purchase-orders/PO-4711"},
    "body": {"id": "PO-4711", "received": 4711},
}
_NOT_A_FUNCTION = frozenset({"T1005", "T1006"})  # JSONata: "Attempted to invoke a non-function"


@dataclass(frozen=True)
class Reference:
    """What TARGET_REFERENCE gave for one answer: the reference as text, or why there is none."""

    text: str | None
    problem: str = ""


def answer_document(status: int, headers: Mapping[str, str], text: str) -> dict[str, Any]:
    """The ERP's answer as the expression reads it: the status, the headers by lower-case name,
    and the body parsed as JSON, else as the text it is."""
    body: Any = text
    with contextlib.suppress(ValueError, RecursionError):  # not JSON, an integer beyond the digit limit, too deep
        body = json.loads(text)
    return {"status": status, "headers": {name.lower(): value for name, value in headers.items()}, "body": body}


def reference_text(value: Any) -> str | None:
    """The expression's result as the text kept in the ledger and shown in Traede; None for nothing.

    A string stays as it is, anything else is written as JSON (12, true, ["a", "b"]). Control
    characters go, secrets are masked (an ERP could echo a key), then it is cut to a sensible length.
    """
    if value is None or (isinstance(value, list) and not value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)  # JSONata's arithmetic gives 4712.0 where the ERP meant 4712
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            value = str(value)
    cleaned = "".join(c for c in value if unicodedata.category(c) != "Cc").strip()
    cleaned = mask(cleaned)[:MAX_REFERENCE_CHARS].strip()
    return cleaned or None


class ReferenceExpression:
    """TARGET_REFERENCE: a JSONata expression on the ERP's 2xx answer (`answer_document`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._expression = Expression(source, "TARGET_REFERENCE")

    @classmethod
    def load_checked(cls, source: str | None) -> ReferenceExpression | None:
        """The cold start's load: compile, then run on `SAMPLE_ANSWER`, so an expression calling a
        function that does not exist fails here rather than on every answer. Other errors there
        depend on the answer, and one answer's failure never fails a delivery."""
        if not source:
            return None
        expression = cls(source)
        try:
            expression._expression.evaluate(SAMPLE_ANSWER)
        except MappingError as exc:
            if exc.code in _NOT_A_FUNCTION:
                raise MappingError(f"{exc} (on a sample answer)", exc.code) from None
        return expression

    def evaluate(self, answer: dict[str, Any]) -> Reference:
        """The reference in one answer; never raises: a failure is a reason, not an error."""
        try:
            value = self._expression.evaluate(answer)
        except MappingError as exc:  # the engine's own errors and any other alike (Expression.evaluate)
            return Reference(None, str(exc))
        text = reference_text(value)
        if text is None:
            return Reference(None, "TARGET_REFERENCE yielded nothing for this answer")
        return Reference(text)


# ------------------------------------------------------------------------------ the request

METHODS = ("POST", "PUT")
DEFAULT_METHOD = "POST"
# Set by the client itself: a static header may not replace them.
RESERVED_HEADERS = frozenset({"idempotency-key", "content-type", "content-length", "transfer-encoding", "host"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 field-name
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOT_SEGMENTS = frozenset({".", ".."})  # RFC 3986 5.2.4: removed from a path before it is sent


@dataclass(frozen=True)
class RequestShape:
    """How every order's request looks, fixed per container from the configuration."""

    method: str = DEFAULT_METHOD
    headers: Mapping[str, str] = field(default_factory=dict)  # static, non-secret
    mapping: OrderMapping | None = None  # None: Traede's order, byte for byte
    system_id: str = ""  # for the mapping's $system_id


@dataclass(frozen=True)
class TargetRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def build_request(
    url_template: str, shape: RequestShape, body: str, idempotency_key: str, reexport_since: str | None = None
) -> TargetRequest:
    """The request for one order; RequestError says why there is none."""
    order: Any = None
    if shape.mapping is not None or _PLACEHOLDER.search(url_template):
        order = json.loads(body)  # the forwarder only hands on bodies that parsed as orders
    url = fill_url(url_template, order) if order is not None else url_template
    payload = body.encode("utf-8")
    if shape.mapping is not None:
        try:
            payload = shape.mapping.render(order, Bindings(shape.system_id, idempotency_key, reexport_since))
        except MappingError as exc:
            raise RequestError(f"order {_order_id(order)}: {exc}") from None
    headers = {"Content-Type": "application/json", **shape.headers, "Idempotency-Key": idempotency_key}
    return TargetRequest(shape.method, url, headers, payload)


def fill_url(url_template: str, order: Any) -> str:
    """Replace each `{field}` with the order's value, URL-encoded as one path segment.

    A value never changes which path segment it fills: one that makes its segment "." or ".."
    is refused. requests and urllib3 drop such segments (and requests decodes %2E first, so
    encoding the dots cannot help): `/purchase-orders/..` would be sent to the resource above.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = order.get(name) if isinstance(order, dict) else None
        if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
            what = "has no" if found is None or found == "" else "has no string or whole-number"
            raise RequestError(f"order {_order_id(order)} {what} {name!r} for the TARGET_URL placeholder {{{name}}}")
        try:
            return quote(str(found), safe="")
        except UnicodeEncodeError:  # a lone surrogate (valid JSON escape): no URL can carry it
            raise RequestError(
                f"order {_order_id(order)} has a {name!r} that is not valid Unicode"
                f" for the TARGET_URL placeholder {{{name}}}"
            ) from None

    end = min((i for i in (url_template.find("?"), url_template.find("#")) if i >= 0), default=len(url_template))
    segments = []
    for segment in url_template[:end].split("/"):
        filled = _PLACEHOLDER.sub(value, segment)
        if filled != segment and unquote(filled) in _DOT_SEGMENTS:
            names = ", ".join(f"{{{name}}}" for name in _PLACEHOLDER.findall(segment))
            raise RequestError(
                f"order {_order_id(order)} would fill the TARGET_URL placeholder {names} with the dot segment"
                f" {unquote(filled)!r}, which sends the request to another resource"
            )
        segments.append(filled)
    return "/".join(segments) + _PLACEHOLDER.sub(value, url_template[end:])


def sent_url(url: str) -> str:
    """The URL as requests prepares it, i.e. as it goes on the wire: requoted, dot segments dropped,
    and without its #fragment, which no request carries. ValueError (InvalidURL, ...) when requests
    cannot send to it."""
    return (requests.Request("GET", url).prepare().url or url).partition("#")[0]


def url_template_problem(url: str) -> str | None:
    """Why a TARGET_URL with placeholders is unusable, or None."""
    names = _PLACEHOLDER.findall(url)
    bad = [n for n in names if not _FIELD.match(n)]
    if bad:
        return f"has placeholders that are not order field names: {bad}"
    if "{" in _PLACEHOLDER.sub("", url) or "}" in _PLACEHOLDER.sub("", url):
        return "has an unmatched { or }"
    if names and _PLACEHOLDER.search(urlsplit(url).netloc):
        return "may have placeholders in its path and query only, not in the host"
    if names and _PLACEHOLDER.search(url.partition("#")[2]):
        # Never sent: every order would go to the one resource the rest names.
        return "may have placeholders in its path and query only, not in the #fragment, which is never sent"
    return None


def parse_static_headers(text: str) -> dict[str, str]:
    """A JSON object of header name -> value; ValueError names the first problem."""
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(raw, dict):
        raise ValueError('must be a JSON object like {"X-Erp-Company": "CRONUS"}')
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not _TOKEN.match(name):
            raise ValueError(f"has a header name that is not an HTTP token: {name!r}")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"may not set {name}: the forwarder sets it itself")
        if name.lower() in (h.lower() for h in headers):
            raise ValueError(f"names the header {name!r} twice")
        if not isinstance(value, str):
            raise ValueError(f"header {name!r} must have a string value")
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise ValueError(f"header {name!r} has a control character in its value")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} has a character HTTP headers cannot carry (Latin-1 only)") from None
        headers[name] = value
    return headers


def _order_id(order: Any) -> str:
    return str(order.get("id")) if isinstance(order, dict) else "?"
