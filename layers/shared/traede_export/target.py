"""Client for the receiving system: POST one order as JSON under an Idempotency-Key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import requests

from traede_export.http import describe_redirect, header_value_problem


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

    @property
    def accepted(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.ALREADY_DELIVERED)


TRANSIENT_4XX = frozenset({408, 429})


class TargetClient:
    def __init__(
        self,
        session: requests.Session,
        url: str,
        timeout: tuple[float, float] = (3.05, 10.0),
        conflict_is_delivered: bool = False,
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = timeout
        self._conflict_is_delivered = conflict_is_delivered

    def deliver(self, body: str, idempotency_key: str) -> DeliveryResult:
        # An odd character from the order or the message fails this record alone (retrying cannot help).
        problem = header_value_problem(idempotency_key)
        if problem:
            return DeliveryResult(Outcome.REJECTED, f"cannot send: the Idempotency-Key {problem}")
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        try:
            response = self._session.post(self._url, data=body.encode("utf-8"), headers=headers, timeout=self._timeout)
        except ValueError as exc:  # UnicodeEncodeError, InvalidURL, InvalidHeader: the request cannot be built
            # Never str(exc): it may quote a header value.
            reason = f"cannot send: the request is not valid HTTP ({type(exc).__name__})"
            return DeliveryResult(Outcome.REJECTED, reason)
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.FAILED, f"no answer from receiving system: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(Outcome.DELIVERED, f"HTTP {status}", status)
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
        detail = f"HTTP {status}: {response.text[:200]}"
        if 400 <= status < 500 and status not in TRANSIENT_4XX:
            return DeliveryResult(Outcome.REJECTED, detail, status)
        return DeliveryResult(Outcome.FAILED, detail, status)
