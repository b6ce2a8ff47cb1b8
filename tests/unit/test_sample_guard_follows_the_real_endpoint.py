"""`replay` lets a test event through only to a queue its SQS client really reaches on this
machine (review of issue 21)."""

from __future__ import annotations

import json

import pytest

from traede_local.events import EVENTS
from traede_ops import cli


def test_a_sample_is_refused_when_boto3_ignores_the_loopback_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A LocalStack user keeps AWS_ENDPOINT_URL in the shell and reaches AWS with boto3's own
    # switch: every configured endpoint is ignored, so the queue is the deployed stack's.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDREVIEW21")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "review21")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/traede-export-orders"
    capsys.readouterr()
    # On main this sends: the unit tier's socket guard stops the SendMessageBatch to AWS.
    code = cli.main(["replay", str(EVENTS / "order.json"), "--queue-url", queue, "--system-id", "erp", "--json"])
    (report,) = json.loads(capsys.readouterr().out)["files"]
    assert code == cli.EXIT_FAILURE and report["sent"] == []
    assert "--allow-samples" in (report["error"] or ""), report
