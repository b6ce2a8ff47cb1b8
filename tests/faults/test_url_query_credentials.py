"""A credential in TARGET_URL's query (an Azure Functions `code`, a Logic Apps / Power Automate
`sig`, an `api_key`) is a known secret like a URL password: no log line carries it
(review of issue 21). urllib3 logs the path and query of every request it retries, at WARNING,
through the root logger: Lambda's runtime sends that to CloudWatch.
"""

from __future__ import annotations

import logging
import socket

import pytest

from traede_local.local_stack import LocalStack, MakeStack

pytestmark = pytest.mark.faults
FUNCTION_KEY = "CANARYfunckey73"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_query_credential_never_reaches_the_logs(make_stack: MakeStack, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}/orders?code={FUNCTION_KEY}"  # the ERP is down: connections refused
    stack: LocalStack = make_stack(orders=2, overrides={"TARGET_URL": url})
    caplog.set_level(logging.INFO)
    assert stack.poll()["enqueued"] == 2
    stack.event_source().drain(max_seconds=3)

    assert "Retrying" in caplog.text  # urllib3 did retry the POSTs
    leaked = [f"{r.name}: {r.getMessage()}" for r in caplog.records if FUNCTION_KEY in r.getMessage()]
    assert leaked == [], leaked[:2]
