"""Client for the receiving system: POST one order as JSON under an Idempotency-Key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import requests


class Outcome(StrEnum):
    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"  # 409 Conflict, when configured so
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
        conflict_is_delivered: bool = True,
    ) -> None:
        self._session = session
        self._url = url
        self._timeout = timeout
        self._conflict_is_delivered = conflict_is_delivered

    def deliver(self, body: str, idempotency_key: str) -> DeliveryResult:
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        try:
            response = self._session.post(self._url, data=body.encode("utf-8"), headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.FAILED, f"no answer from receiving system: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(Outcome.DELIVERED, f"HTTP {status}", status)
        if status == 409 and self._conflict_is_delivered:
            return DeliveryResult(Outcome.ALREADY_DELIVERED, "HTTP 409: already delivered", status)
        detail = f"HTTP {status}: {response.text[:200]}"
        if 400 <= status < 500 and status not in TRANSIENT_4XX:
            return DeliveryResult(Outcome.REJECTED, detail, status)
        return DeliveryResult(Outcome.FAILED, detail, status)
