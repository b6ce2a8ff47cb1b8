"""`traede-export map`: the request each order would produce, built by the forwarder's own code.

No AWS and no network: the mapping, the URL placeholders, the method and the static headers
are applied exactly as `TargetClient` applies them. Secret headers (the target secret) are
added on the wire only and are never shown. The ERP's reference (TARGET_REFERENCE) is read from
a saved answer exactly as the forwarder reads it from a live one.
"""

from __future__ import annotations

import http.client
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from traede_export.errors import InvalidOrder, RequestError
from traede_export.mapping import OrderMapping
from traede_export.models import idempotency_key
from traede_export.redact import mask
from traede_export.samples import is_sample, sample_key
from traede_export.target import ReferenceExpression, RequestShape, answer_document, build_request, sent_url
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


@dataclass
class ReferencePreview:
    answer: str  # the file
    reference: str | None = None
    problem: str | None = None  # why there is none: the answer's, or the file's

    @property
    def ok(self) -> bool:
        return self.reference is not None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class AnswerError(ValueError):
    """A file that holds no answer."""


class _Saved:
    """A saved HTTP answer as the socket `http.client` parses answers from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *args: Any, **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


def read_answer(path: Path) -> dict[str, Any]:
    """The answer as TARGET_REFERENCE sees it, from a file: an HTTP answer as `curl -i` saves it
    (status line, headers, body), or the JSON `{"status": ..., "headers": {...}, "body": ...}`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnswerError(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    if data.lstrip().startswith(b"HTTP/"):
        response = http.client.HTTPResponse(_Saved(data.lstrip()))  # type: ignore[arg-type]
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, ValueError) as exc:
            raise AnswerError(f"not an HTTP answer ({type(exc).__name__})") from None
        text = body.decode(response.headers.get_content_charset() or "utf-8", "replace")
        return answer_document(response.status, dict(response.headers.items()), text)
    try:
        answer = json.loads(data)
    except ValueError:
        raise AnswerError('neither an HTTP answer ("HTTP/1.1 201 ...") nor JSON') from None
    if not isinstance(answer, dict) or not set(answer) <= {"status", "headers", "body"} or "body" not in answer:
        raise AnswerError('JSON must be {"status": 201, "headers": {...}, "body": ...} (status and headers optional)')
    headers = answer.get("headers") or {}
    status = answer.get("status", 200)
    if not isinstance(headers, dict) or not isinstance(status, int) or isinstance(status, bool):
        raise AnswerError('"status" must be a number and "headers" an object')
    return {"status": status, "headers": {str(k).lower(): v for k, v in headers.items()}, "body": answer["body"]}


def preview_references(paths: list[str], expression: ReferenceExpression) -> list[ReferencePreview]:
    """The reference each saved answer gives, as the forwarder would read it from a live one."""
    results = []
    for raw in paths:
        try:
            answer = read_answer(Path(raw))
        except AnswerError as exc:
            results.append(ReferencePreview(raw, problem=str(exc)))
            continue
        found = expression.evaluate(answer)
        results.append(ReferencePreview(raw, found.text, found.problem or None))
    return results
