"""Client for Traede's production-order Export API (see docs: export, mark-as-exported)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from traede_export.config import ExportOptions
from traede_export.errors import TraedeError
from traede_export.filters import encode_filter_groups
from traede_export.http import describe_redirect
from traede_export.models import MAX_MARK_BATCH, version_of
from traede_export.redact import excerpt

EXPORT_PATH = "/v10/production-orders/export"
MARK_PATH = "/v10/production-orders/mark-as-exported"
MAX_PAGES = 2000  # a hard stop against a server that pages forever


def _answered(what: str, response: requests.Response) -> TraedeError:
    if 300 <= response.status_code < 400:  # never followed: it would carry the app key elsewhere
        redirect = describe_redirect(response)
        return TraedeError(
            f"{what} answered {redirect}; redirects are never followed: check TRAEDE_API_URL", response.status_code
        )
    return TraedeError(f"{what} answered HTTP {response.status_code}: {excerpt(response.text)}", response.status_code)


def export_params(
    system_id: str,
    options: ExportOptions,
    page: int,
    not_exported_since: datetime | None = None,
) -> list[tuple[str, str]]:
    params = [
        ("system_id", system_id),
        ("include_open", "1" if options.include_open else "0"),
        ("include_closed", "1" if options.include_closed else "0"),
        ("limit", str(options.page_size)),
        ("page", str(page)),
    ]
    if not_exported_since is not None:
        params.append(("not_exported_since", not_exported_since.strftime("%Y-%m-%d %H:%M:%S")))
    params.extend(("includes[]", name) for name in options.includes)
    params.extend(encode_filter_groups(options.filter_groups))
    return params


@dataclass
class ExportStats:
    pages: int = 0
    fetched: int = 0
    duplicates: int = 0
    stopped_early: bool = False
    page_repeated: bool = False  # paging ended on a page with nothing new: the server ignores `page`
    # Order id -> the newest version yielded ("" if unreadable). Offset paging over a moving set can
    # serve an order twice; a later copy with a newer version is an edit made mid-run, not a duplicate.
    seen: dict[int, str] = field(default_factory=dict)
    seen_invalid: set[str] = field(default_factory=set)  # fingerprints of entries without an integer id


class TraedeClient:
    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        system_id: str,
        timeout: tuple[float, float],  # (connect, read): config.HttpSettings holds the defaults
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._system_id = system_id
        self._timeout = timeout

    def export_page(
        self, options: ExportOptions, page: int, not_exported_since: datetime | None = None
    ) -> list[dict[str, Any]]:
        params = export_params(self._system_id, options, page, not_exported_since)
        try:
            response = self._session.get(self._base + EXPORT_PATH, params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TraedeError(f"export page {page} failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise _answered(f"export page {page}", response)
        try:
            orders = response.json()["production_orders"]
        except (ValueError, KeyError, TypeError):
            raise TraedeError(f"export page {page} has no 'production_orders' list", unreadable=True) from None
        if not isinstance(orders, list):
            raise TraedeError(f"export page {page}: 'production_orders' is not a list", unreadable=True)
        return orders

    def iter_export(
        self,
        options: ExportOptions,
        stats: ExportStats,
        not_exported_since: datetime | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of orders not yet yielded in this run (see `walk_pages`)."""
        return walk_pages(
            lambda page: self.export_page(options, page, not_exported_since), options.page_size, stats, keep_going
        )

    def mark_as_exported(self, notes: Sequence[tuple[int, str]]) -> None:
        """Mark orders exported, each with a note for Traede's timeline: `[(order_id, note), ...]`."""
        if not 0 < len(notes) <= MAX_MARK_BATCH:
            raise ValueError(f"mark-as-exported takes 1 to {MAX_MARK_BATCH} orders, got {len(notes)}")
        body = {
            "production_orders": [
                {"production_order_id": oid, "system_id": self._system_id, "note": note} for oid, note in notes
            ]
        }
        try:
            response = self._session.post(self._base + MARK_PATH, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TraedeError(f"mark-as-exported failed: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise _answered("mark-as-exported", response)


def walk_pages(
    fetch: Callable[[int], list[Any]], page_size: int, stats: ExportStats, keep_going: Callable[[], bool]
) -> Iterator[list[dict[str, Any]]]:
    """Yield the pages `fetch(0)`, `fetch(1)`, ... with what this run has not yielded yet.

    Works whether the server pages by our `limit`, by its own page size, or returns everything at
    once. It stops on an empty page, a page larger than `limit` (paging ignored), a page with
    nothing new (`page` ignored), or the hard cap. A short page is not the end: the server may use
    a smaller page size than we asked for.
    """
    for page in range(MAX_PAGES):
        if not keep_going():
            stats.stopped_early = True
            return
        orders = fetch(page)
        stats.pages += 1
        fresh = []
        for order in orders:
            order_id = order.get("id") if isinstance(order, dict) else None
            if type(order_id) is int:  # not bool: `"id": true` is no order 1
                version = _version(order)
                if order_id in stats.seen and version <= stats.seen[order_id]:
                    stats.duplicates += 1
                    continue
                stats.seen[order_id] = version
            else:  # an entry that is no order is seen once per run too, or a repeated page never ends
                fingerprint = _fingerprint(order)
                if fingerprint in stats.seen_invalid:
                    stats.duplicates += 1
                    continue
                stats.seen_invalid.add(fingerprint)
            fresh.append(order)
        stats.fetched += len(fresh)
        if fresh:
            yield fresh
        if not orders or not fresh or len(orders) > page_size:
            stats.page_repeated = bool(orders) and not fresh
            return
    stats.stopped_early = True


def _fingerprint(entry: Any) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode("utf-8", "replace")).hexdigest()


def _version(order: dict[str, Any]) -> str:
    """The order's version, or "" when its `updated_at` is unreadable (the poller parks it as invalid)."""
    try:
        return version_of(order["updated_at"])
    except (KeyError, TypeError, AttributeError, ValueError):
        return ""
