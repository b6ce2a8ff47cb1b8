"""Typed configuration, read from the environment once per container.

`Env` is the one place that names the environment variables; the template, the local
runner and the tests all refer to it.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_plus, urlparse

from traede_export.claim_check import MAX_THRESHOLD_BYTES, MIN_THRESHOLD_BYTES
from traede_export.errors import ConfigError
from traede_export.filters import FilterGroup, parse_filter_groups
from traede_export.http import header_value_problem
from traede_export.redact import register
from traede_export.target import DEFAULT_METHOD, METHODS, parse_static_headers, url_template_problem


class Env:
    TRAEDE_API_URL = "TRAEDE_API_URL"
    TRAEDE_SYSTEM_ID = "TRAEDE_SYSTEM_ID"
    TRAEDE_CREDENTIALS_SECRET = "TRAEDE_CREDENTIALS_SECRET"
    TARGET_URL = "TARGET_URL"
    TARGET_CREDENTIALS_SECRET = "TARGET_CREDENTIALS_SECRET"
    TARGET_CONFLICT_IS_DELIVERED = "TARGET_CONFLICT_IS_DELIVERED"
    TARGET_METHOD = "TARGET_METHOD"
    TARGET_MAPPING = "TARGET_MAPPING"
    TARGET_STATIC_HEADERS = "TARGET_STATIC_HEADERS"
    TARGET_REFERENCE = "TARGET_REFERENCE"
    EXPORT_INCLUDE_OPEN = "EXPORT_INCLUDE_OPEN"
    EXPORT_INCLUDE_CLOSED = "EXPORT_INCLUDE_CLOSED"
    EXPORT_INCLUDES = "EXPORT_INCLUDES"
    EXPORT_FILTER_GROUPS = "EXPORT_FILTER_GROUPS"
    EXPORT_PAGE_SIZE = "EXPORT_PAGE_SIZE"
    QUEUE_URL = "QUEUE_URL"
    DLQ_URL = "DLQ_URL"
    LEDGER_TABLE = "LEDGER_TABLE"
    IN_FLIGHT_LEASE_SECONDS = "IN_FLIGHT_LEASE_SECONDS"
    FORWARD_CONCURRENCY = "FORWARD_CONCURRENCY"
    HTTP_CONNECT_TIMEOUT = "HTTP_CONNECT_TIMEOUT"
    HTTP_READ_TIMEOUT = "HTTP_READ_TIMEOUT"
    TIME_SAFETY_MARGIN_SECONDS = "TIME_SAFETY_MARGIN_SECONDS"
    UNANSWERED_POST_HOLD_SECONDS = "UNANSWERED_POST_HOLD_SECONDS"
    LARGE_ORDER_BUCKET = "LARGE_ORDER_BUCKET"
    LARGE_ORDER_THRESHOLD_BYTES = "LARGE_ORDER_THRESHOLD_BYTES"


DEFAULT_TRAEDE_API_URL = "https://api.traede.com"
MAX_PAGE_SIZE = 60  # Traede's documented maximum for `limit`
# The template's default `Includes`: what a stack deployed with the defaults asks the export for.
DEFAULT_INCLUDES = "lines,lines.product,lines.variant,supplier"
INCLUDABLE = frozenset(
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
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 3.05
    read_timeout: float = 10.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


@dataclass(frozen=True)
class TraedeSettings:
    api_url: str
    system_id: str
    credentials_secret: str


@dataclass(frozen=True)
class LargeOrders:
    """Where orders over the threshold go (claim-check, see claim_check.py)."""

    bucket: str
    threshold: int = MAX_THRESHOLD_BYTES


@dataclass(frozen=True)
class ExportOptions:
    include_open: bool = False
    include_closed: bool = False
    includes: tuple[str, ...] = ()
    filter_groups: tuple[FilterGroup, ...] = ()
    page_size: int = MAX_PAGE_SIZE


@dataclass(frozen=True)
class PollerConfig:
    traede: TraedeSettings
    export: ExportOptions
    queue_url: str
    dlq_url: str
    ledger_table: str
    lease_seconds: int
    large: LargeOrders
    http: HttpSettings = field(default_factory=HttpSettings)
    time_margin: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PollerConfig:
        r = _Reader(os.environ if environ is None else environ)
        cfg = cls(
            traede=_traede(r),
            export=_export(r),
            queue_url=r.url(Env.QUEUE_URL),
            dlq_url=r.url(Env.DLQ_URL),
            ledger_table=r.required(Env.LEDGER_TABLE),
            lease_seconds=r.integer(Env.IN_FLIGHT_LEASE_SECONDS, 7200, 1, 14 * 24 * 3600),
            large=_large(r),
            http=_http(r),
            time_margin=r.number(Env.TIME_SAFETY_MARGIN_SECONDS, cls.time_margin, 0.0, 300.0),
        )
        r.raise_if_errors()
        return cfg


@dataclass(frozen=True)
class ExportConfig:
    """What asking Traede's export as the poller asks it takes, and nothing else: the API, the system,
    the query, and the size over which an order goes through S3. `traede-export pending` reads it
    from the poller's own environment (or the operator's), with the poller's parser."""

    api_url: str
    system_id: str
    export: ExportOptions
    large_threshold: int = MAX_THRESHOLD_BYTES
    http: HttpSettings = field(default_factory=HttpSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExportConfig:
        r = _Reader(os.environ if environ is None else environ)
        cfg = cls(
            api_url=r.url(Env.TRAEDE_API_URL, DEFAULT_TRAEDE_API_URL).rstrip("/"),
            system_id=r.system_id(Env.TRAEDE_SYSTEM_ID),  # refused as the poller refuses it
            export=_export(r),
            large_threshold=_threshold(r),
            http=_http(r),
        )
        r.raise_if_errors()
        return cfg


@dataclass(frozen=True)
class ForwarderConfig:
    traede: TraedeSettings
    target_url: str
    target_credentials_secret: str | None
    conflict_is_delivered: bool
    dlq_url: str
    ledger_table: str
    large: LargeOrders
    concurrency: int = 10
    http: HttpSettings = field(default_factory=HttpSettings)
    time_margin: float = 10.0
    target_method: str = DEFAULT_METHOD
    target_mapping: str | None = None  # a file in the bundled mappings folder, or an absolute path
    target_static_headers: dict[str, str] = field(default_factory=dict)
    target_reference: str | None = None  # JSONata on the ERP's 2xx answer: its reference for the order
    # How long a POST that failed keeps its delivery lease (the ERP may still store it); None: until
    # the lease runs out. The local stack scales it down, as it scales the queue's visibility timeout.
    unanswered_hold: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ForwarderConfig:
        r = _Reader(os.environ if environ is None else environ)
        cfg = cls(
            traede=_traede(r),
            target_url=r.url_template(Env.TARGET_URL),
            target_credentials_secret=r.optional(Env.TARGET_CREDENTIALS_SECRET),
            conflict_is_delivered=r.boolean(Env.TARGET_CONFLICT_IS_DELIVERED, False),
            dlq_url=r.url(Env.DLQ_URL),
            ledger_table=r.required(Env.LEDGER_TABLE),
            large=_large(r),
            concurrency=r.integer(Env.FORWARD_CONCURRENCY, cls.concurrency, 1, 64),
            http=_http(r),
            time_margin=r.number(Env.TIME_SAFETY_MARGIN_SECONDS, cls.time_margin, 0.0, 300.0),
            target_method=r.choice(Env.TARGET_METHOD, cls.target_method, METHODS),
            target_mapping=r.optional(Env.TARGET_MAPPING),
            target_static_headers=r.headers(Env.TARGET_STATIC_HEADERS),
            target_reference=r.optional(Env.TARGET_REFERENCE),
            unanswered_hold=(
                r.number(Env.UNANSWERED_POST_HOLD_SECONDS, 0.0, 0.0, 900.0)
                if r.optional(Env.UNANSWERED_POST_HOLD_SECONDS) is not None
                else None
            ),
        )
        r.raise_if_errors()
        return cfg


def read_target_url(value: str | None, name: str = Env.TARGET_URL) -> str | None:
    """A TARGET_URL read as the forwarder's cold start reads it (stripped; the same refusals, never
    echoing the value; its password and query values registered for masking), for tools that
    show requests (`traede-export map`). None when empty; ConfigError names the problem."""
    reader = _Reader({name: value or ""})
    url = reader.url_template(name) if reader.optional(name) else None
    reader.raise_if_errors()
    return url


def _traede(r: _Reader) -> TraedeSettings:
    return TraedeSettings(
        api_url=r.url(Env.TRAEDE_API_URL, DEFAULT_TRAEDE_API_URL).rstrip("/"),
        system_id=r.system_id(Env.TRAEDE_SYSTEM_ID),
        credentials_secret=r.required(Env.TRAEDE_CREDENTIALS_SECRET),
    )


def _export(r: _Reader) -> ExportOptions:
    return ExportOptions(
        include_open=r.boolean(Env.EXPORT_INCLUDE_OPEN, False),
        include_closed=r.boolean(Env.EXPORT_INCLUDE_CLOSED, False),
        includes=r.includes(Env.EXPORT_INCLUDES),
        filter_groups=r.filter_groups(Env.EXPORT_FILTER_GROUPS),
        page_size=r.integer(Env.EXPORT_PAGE_SIZE, MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    )


def _threshold(r: _Reader) -> int:
    return r.integer(Env.LARGE_ORDER_THRESHOLD_BYTES, MAX_THRESHOLD_BYTES, MIN_THRESHOLD_BYTES, MAX_THRESHOLD_BYTES)


def _large(r: _Reader) -> LargeOrders:
    return LargeOrders(bucket=r.required(Env.LARGE_ORDER_BUCKET), threshold=_threshold(r))


def _http(r: _Reader) -> HttpSettings:
    default = HttpSettings()
    return HttpSettings(
        connect_timeout=r.number(Env.HTTP_CONNECT_TIMEOUT, default.connect_timeout, 0.1, 60.0),
        read_timeout=r.number(Env.HTTP_READ_TIMEOUT, default.read_timeout, 0.1, 300.0),
    )


def _url_password(url: str) -> tuple[str, str]:
    """The password (or token) before a URL's last "@", as written and percent-decoded."""
    user_info = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*(:/*|/+)", "", url.rpartition("@")[0])  # less any scheme
    user, colon, password = user_info.partition(":")
    secret = password if colon else user
    return secret, unquote(secret)


# What NFKC turns into "@" (urllib normalises a host that way): a full-width or small commercial at.
_COMPATIBLE_AT = str.maketrans(dict.fromkeys("\uff20\ufe6b", "@"))


def _url_passwords(value: str, normalized: str) -> tuple[str, ...]:
    """The password of a URL with user info, in the forms it may be quoted in: as written (behind an
    "@" of any width) and NFKC-normalised, each also percent-decoded."""
    return (*_url_password(value.translate(_COMPATIBLE_AT)), *_url_password(normalized))


def _query_values(url: str) -> tuple[str, ...]:
    """Every value in a URL's query and fragment, as written and decoded, but `{placeholders}`.

    A query may carry a credential (an Azure Functions `code`, a SAS `sig`, an `api_key`) and the URL
    does not say which value is one; HTTP libraries log the path and query of each retry."""
    start = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    values: list[str] = []
    for part in re.split(r"[?#&;]", url[start:]):
        value = part.partition("=")[2] or part
        if value and "{" not in value:
            values += [value, unquote(value), unquote_plus(value)]
    return tuple(values)


class _Reader:
    """Reads variables and collects every problem, so one message names them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ
        self._errors: list[str] = []

    def raise_if_errors(self) -> None:
        if self._errors:
            raise ConfigError("invalid configuration: " + "; ".join(self._errors))

    def _fail(self, name: str, problem: str) -> None:
        self._errors.append(f"{name} {problem}")

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            self._fail(name, "is required but not set")
            return ""
        return value

    def url(self, name: str, default: str | None = None) -> str:
        """An http(s) URL; every problem is named without showing the value, which may hold a secret."""
        value = self.optional(name) or default
        if value is None:
            return self.required(name)
        register(*_query_values(value))  # a credential in the query: masked like a password
        # NFKC as urllib applies it to a host: a full-width "@" is an "@" there.
        normalized = unicodedata.normalize("NFKC", value)
        if "@" in normalized:
            # User info in any form, never echoed: a mistyped separator (`https//u:p@h`) hides it
            # from urlparse's netloc, and a "/", "?" or "#" in the password moves the "@" past it.
            register(*_url_passwords(value, normalized))
            self._fail(
                name,
                "must not carry credentials (user:password@host): put them in the credentials secret"
                " (an @ that is no credential is written %40)",
            )
            return value
        try:
            parsed = urlparse(value)
        except ValueError:  # e.g. an unclosed "[" of an IPv6 host, or a host NFKC changes
            self._fail(name, "is not a valid URL (the value is not shown)")
            return value
        if parsed.scheme not in ("http", "https"):
            self._fail(name, "must start with http:// or https:// (the value is not shown)")
        elif not parsed.netloc:
            self._fail(name, "must name a host, as in https://host/path (the value is not shown)")
        return value

    def url_template(self, name: str) -> str:
        """A URL that may hold `{field}` placeholders filled from each order."""
        before = len(self._errors)
        value = self.url(name)
        # Only for a URL accepted so far: braces in a refused one may be a password's.
        problem = url_template_problem(value) if value and len(self._errors) == before else None
        if problem:
            self._fail(name, problem)
        return value

    def system_id(self, name: str) -> str:
        """The receiving system's id, which every Idempotency-Key carries (`traede:{system_id}:...`)."""
        value = self.required(name)
        problem = header_value_problem(f"traede:{value}:") if value else None
        if problem:
            self._fail(name, f"cannot go in an Idempotency-Key header: it {problem}; got {value!r}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (self.optional(name) or default).upper()
        if value not in allowed:
            self._fail(name, f"must be one of {', '.join(allowed)}, got {self._env.get(name)!r}")
            return default
        return value

    def headers(self, name: str) -> dict[str, str]:
        value = self.optional(name)
        if value is None:
            return {}
        try:
            return parse_static_headers(value)
        except ValueError as exc:
            self._fail(name, str(exc))
        return {}

    def boolean(self, name: str, default: bool) -> bool:
        value = self._env.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self._fail(name, f"must be true/false or 1/0, got {value!r}")
        return default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            self._fail(name, f"must be a number, got {value!r}")
            return default
        if not low <= number <= high:
            self._fail(name, f"must be between {low:g} and {high:g}, got {value!r}")
        return number

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self._fail(name, f"must be a whole number, got {value!r}")
            return default
        if not low <= number <= high:
            self._fail(name, f"must be between {low} and {high}, got {value!r}")
        return number

    def includes(self, name: str) -> tuple[str, ...]:
        value = self.optional(name)
        if value is None:
            return ()
        items = tuple(part.strip() for part in value.split(",") if part.strip())
        unknown = sorted(set(items) - INCLUDABLE)
        if unknown:
            self._fail(name, f"has unknown includes {unknown}; allowed: {sorted(INCLUDABLE)}")
        return items

    def filter_groups(self, name: str) -> tuple[FilterGroup, ...]:
        value = self.optional(name)
        if value is None:
            return ()
        try:
            raw: Any = json.loads(value)
            return parse_filter_groups(raw)
        except json.JSONDecodeError as exc:
            self._fail(name, f"is not valid JSON ({exc.msg} at position {exc.pos})")
        except ValueError as exc:
            self._fail(name, f"is not a valid filter-group list: {exc}")
        return ()
