"""No credential leaves the process, even when Traede or the ERP quotes it back in an error.

A faulty run on the local stack: the ERP answers 403 quoting the API key and tenant headers it
got, Traede answers 401 quoting the bearer token and the app key, and a function cold-starts
with a password in its URL. Then every channel a text leaves by is searched for every secret:
the logs (Powertools' lines and EMF metrics on stdout, and every log record with its extras),
the DLQ's bodies and attributes, the ledger's items, the errors the handlers raise (as Lambda's
runtime and Invoke API report them) and the operator CLI's output.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from traede_export.errors import ConfigError
from traede_local.lambda_endpoint import LambdaEndpoint
from traede_local.lambda_runtime import LocalFunction
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
# Each holds a canary unique to it: a leak in any form (escaped, cut short) still shows the canary.
TOKEN = "tok-CANARYTOKEN17-8f2e"
APP_KEY = "app/CANARYAPPKEY23+9c="  # "/" and "+": escaped in JSON by PHP, and in URLs
API_KEY = "erp-key-CANARYAPIKEY31"
TENANT = "tenant-CANARYTENANT47"
URL_PASSWORD = "CANARYURLPW59/x"
SECRETS = {
    "Traede token": "CANARYTOKEN17",
    "Traede app key": "CANARYAPPKEY23",
    "target header X-Api-Key": "CANARYAPIKEY31",
    "target header X-Tenant": "CANARYTENANT47",
    "URL password": "CANARYURLPW59",
}


@pytest.fixture
def faulty(make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalStack, io.StringIO]]:
    """The stack, and what the functions' Powertools handler writes. That handler is set up by the
    first cold start in this process, on whatever stdout was then: its stream is swapped for the test."""
    stack: LocalStack = make_stack(orders=6, overrides={"POWERTOOLS_LOG_LEVEL": "DEBUG"})
    target = {"X-Api-Key": API_KEY, "X-Tenant": TENANT}
    env = stack.forwarder.environment
    for variable, value in (
        ("TRAEDE_CREDENTIALS_SECRET", {"access_token": TOKEN, "app_key": APP_KEY}),
        ("TARGET_CREDENTIALS_SECRET", target),
    ):
        stack.secretsmanager.put_secret_value(SecretId=env[variable], SecretString=json.dumps(value))
    stack.sandbox.access_token, stack.sandbox.app_key = TOKEN, APP_KEY
    stack.receiver.required_headers = target
    server = LambdaEndpoint({"poller": stack.poller})
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.start())
    stack.poller.cold_start()
    service = logging.getLogger(stack.poller.environment["POWERTOOLS_SERVICE_NAME"])
    handler: logging.StreamHandler[Any] = getattr(service, "powertools_handler")  # noqa: B009 - set by Powertools
    lines = io.StringIO()
    # Swapped without setStream, which flushes the old stream first: an earlier test's captured
    # stdout, closed by now when that test ran first in this process.
    previous, handler.stream = handler.stream, lines
    yield stack, lines
    handler.stream = previous
    server.stop()


def table(found: dict[tuple[str, str], int]) -> str:
    channels = list(dict.fromkeys(where for _, where in found))
    rows = ["| secret | " + " | ".join(channels) + " |", "|---" * (len(channels) + 1) + "|"]
    for secret in SECRETS:
        rows.append(f"| {secret} | " + " | ".join(str(found[secret, where]) for where in channels) + " |")
    return "\n".join(rows)


def formatted(exc: BaseException) -> str:
    """What Lambda's runtime logs for an unhandled exception: message, type and the whole chain."""
    return "".join(traceback.format_exception(exc))


def test_no_channel_carries_a_secret_after_a_faulty_run(
    faulty: tuple[LocalStack, io.StringIO], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    stack, powertools = faulty
    caplog.set_level(logging.DEBUG)
    sandbox, receiver = stack.sandbox, stack.receiver
    pending = sandbox.pending(SYSTEM)
    forbidden = set(pending[:2])
    receiver.forbidden_ids = forbidden  # 403 "X-Api-Key erp-key-... has no access"
    assert stack.poll()["enqueued"] == len(pending)  # good credentials: the orders are queued
    sandbox.credentials_expired = True  # 401 "Bearer tok-... with app key app/... has expired"
    stack.event_source().drain(max_seconds=4)  # refusals parked; marks refused, retried

    errors: list[str] = []
    with pytest.raises(Exception) as poll_error:
        stack.poll()
    errors.append(formatted(poll_error.value))
    cold = LocalFunction(
        stack.forwarder.spec, overrides={"TARGET_URL": f"https//erp-user:{URL_PASSWORD}@erp.example.com/orders"}
    )
    with pytest.raises(ConfigError) as config_error:
        cold.cold_start()
    errors.append(formatted(config_error.value))
    logs = capfd.readouterr()

    cli_output = []
    where = ["--queue-url", stack.queue_url, "--dlq-url", stack.dlq_url, "--table", stack.table, "--system-id", SYSTEM]
    for argv in (
        ["status", *where, "--age-source", "none"],
        ["redrive", "--dry-run", *where],  # shows each parked order's failure_reason
        ["reexport", "--since", "2026-11-01T00:00:00Z", "--function", "poller"],  # the poller fails: a 401
    ):
        for extra in ([], ["--json"]):
            cli.main(argv + extra)
            out, err = capfd.readouterr()
            cli_output.append(out + err)

    dead = stack.dlq_messages()
    stdout = logs.out.splitlines()
    channels = {
        "logs": "\n".join(
            [powertools.getvalue()]
            + [line for line in stdout if not line.startswith('{"_aws"')]
            + [logs.err, caplog.text]
            + [json.dumps(vars(r), default=str) for r in caplog.records]
        ),
        "metrics (EMF)": "\n".join(line for line in stdout if line.startswith('{"_aws"')),
        "DLQ bodies and attributes": json.dumps([(m["Body"], m.get("MessageAttributes")) for m in dead]),
        "ledger": json.dumps(stack.dynamodb.scan(TableName=stack.table)["Items"]),
        "raised errors": "\n".join(errors),
        "CLI output": "\n".join(cli_output),
    }
    found = {
        (secret, where): text.count(canary) for secret, canary in SECRETS.items() for where, text in channels.items()
    }
    print(table(found))  # the table of the closing note: `pytest -s` shows it
    assert found == dict.fromkeys(found, 0), {k: v for k, v in found.items() if v}

    # The run was faulty as intended: the secrets were quoted, and their place is masked.
    reasons = [m["MessageAttributes"]["failure_reason"]["StringValue"] for m in dead if "MessageAttributes" in m]
    refusals = [r for r in reasons if "HTTP 403" in r]
    assert len(refusals) == len(forbidden) and all("X-Api-Key ***, X-Tenant *** has" in r for r in refusals)
    assert "HTTP 401" in str(poll_error.value) and "*** with app key *** has expired" in str(poll_error.value)
    assert "the poller failed" in channels["CLI output"] and "***" in channels["CLI output"]
    assert "mark-as-exported failed" in channels["logs"] and not sandbox.exported(SYSTEM)
