"""What an error quotes from an answer never holds part of a known secret (review of issue 21)."""

from __future__ import annotations

import base64
import json

from traede_export.credentials import target_headers
from traede_export.redact import excerpt, mask
from traede_export.target import DeliveryResult, Outcome


def test_an_excerpt_never_keeps_the_head_of_a_secret_cut_before_masking() -> None:
    # A bearer JWT is often 800-2,000 characters. The answer is cut at 4,000 characters *before*
    # masking; the copies masked ahead of the cut shrink to "***", so the head of the copy the cut
    # splits lands inside the 200 characters kept.
    jwt = "eyJhbGciOiJSUzI1NiJ9." + "CANARYJWT41" + "x" * 868  # 900 characters
    headers = target_headers("erp/creds", lambda _: {"Authorization": f"Bearer {jwt}"})()
    answer = json.dumps({"error": "token rejected", "seen": [headers["Authorization"]] * 5})
    reason = DeliveryResult(Outcome.REJECTED, f"HTTP 401: {excerpt(answer)}", 401).reason
    assert "CANARYJWT41" not in reason and "eyJhbGciOiJSUzI1NiJ9" not in reason, reason


def test_the_password_inside_a_basic_authorization_value_is_masked() -> None:
    # The secret holds "Basic base64(user:password)": the base64 text is masked, the password it
    # carries is not, though an ERP or a proxy that decodes it may well name it in an error.
    password = "CANARYbasic53"
    value = "Basic " + base64.b64encode(f"erp-user:{password}".encode()).decode()
    target_headers("erp/creds", lambda _: {"Authorization": value})()
    assert password not in mask(f"HTTP 401: password '{password}' is wrong for erp-user")
