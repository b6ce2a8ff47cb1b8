"""`traede-export map`: the request each order would produce, built by the forwarder's own code.

No AWS and no network: the mapping, the URL placeholders, the method and the static headers
are applied exactly as `TargetClient` applies them. Secret headers (the target secret) are
added on the wire only and are never shown.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from traede_export.mapping import OrderMapping
from traede_export.models import InvalidOrder, idempotency_key
from traede_export.redact import mask
from traede_export.samples import is_sample, sample_key
from traede_export.target import RequestError, RequestShape, build_request, sent_url
from traede_ops.replay import order_files, orders_in


@dataclass
class Preview:
    file: str
    order_id: int | None
    ok: bool
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mapping_arg(value: str | None) -> OrderMapping | None:
    """A path that exists is used as given; anything else is a bundled mapping's name."""
    if not value:
        return None
    path = Path(value)
    return OrderMapping.load(str(path.resolve()) if path.exists() else value)


def preview(
    paths: list[str], url: str | None, shape: RequestShape, system_id: str, reexport_since: str | None = None
) -> list[Preview]:
    results: list[Preview] = []
    for path in order_files(paths):
        try:
            orders = orders_in(path)
        except InvalidOrder as exc:
            results.append(Preview(str(path), None, False, error=str(exc)))
            continue
        for order in orders:
            since = reexport_since or order.reexport_since
            key = idempotency_key(system_id, order.ref, since)
            if is_sample(order.body):  # a test event goes under its own key (samples.py)
                key = sample_key(key)
            try:
                request = build_request(url or "", shape, order.body, key, since)
                # As requests will send it: it requotes the URL and drops dot segments from its path.
                sent = sent_url(request.url) if request.url else ""
            except RequestError as exc:
                results.append(Preview(str(path), order.ref.order_id, False, error=str(exc)))
                continue
            except ValueError as exc:  # never str(exc): requests quotes the whole URL
                error = f"the URL cannot be sent ({type(exc).__name__}): check TARGET_URL"
                results.append(Preview(str(path), order.ref.order_id, False, error=error))
                continue
            results.append(
                Preview(
                    str(path),
                    order.ref.order_id,
                    True,
                    method=request.method,
                    # Masked here, not only by the output stream: rich folds a long URL across
                    # lines, and a credential split in two is no longer recognised there.
                    url=mask(sent) or None,
                    headers={name: mask(value) for name, value in request.headers.items()},
                    body=json.loads(request.body),
                )
            )
    return results
