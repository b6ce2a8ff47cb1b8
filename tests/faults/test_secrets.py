"""A credential of the wrong shape never reaches a log, a traceback or the CLI.

A faulty local run: both secrets are replaced by values with CR/LF, NUL and non-latin-1 characters,
then the forwarder drains, the poller runs, and `traede-export reexport` invokes the poller through
Lambda's Invoke API. Every byte of output (logs at DEBUG, stdout and stderr, formatted tracebacks
as the Lambda runtime would log them) is searched for the secret values.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator

import pytest

from traede_export.errors import CredentialsError
from traede_local.lambda_endpoint import LambdaEndpoint
from traede_local.lambda_runtime import sqs_event
from traede_local.local_stack import LocalStack, MakeStack
from traede_ops import cli

pytestmark = pytest.mark.faults
SYSTEM = "local-erp"
# Each carries a canary that is unique to it; a leak shows the canary whatever the escaping.
TRAEDE_SECRET = {"access_token": "tok-CANARYTOKEN17\n", "app_key": "app-CANARYAPPKEY23\r\nX-Injected: 1"}
TARGET_SECRET = {"X-Api-Key": "key-CANARYAPIKEY31\n", "X-Tenant": "CANARYTENANT47\u0394\x00"}
CANARIES = ["CANARYTOKEN17", "CANARYAPPKEY23", "CANARYAPIKEY31", "CANARYTENANT47"]


def formatted(exc: BaseException) -> str:
    """What the Lambda runtime logs for an unhandled exception: message, type and the whole chain."""
    return "".join(traceback.format_exception(exc))


def assert_no_secret(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"secret value {canary} leaked"


@pytest.fixture
def endpoint(make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    stack: LocalStack = make_stack(
        orders=4, overrides={"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_METRICS_DISABLED": "true"}
    )
    server = LambdaEndpoint({"poller": stack.poller})
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.start())
    yield stack
    server.stop()


def test_no_exception_path_prints_a_credential(
    endpoint: LocalStack, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    stack = endpoint
    stack.poll()  # good credentials: orders are queued
    env = stack.forwarder.environment
    for variable, value in (("TRAEDE_CREDENTIALS_SECRET", TRAEDE_SECRET), ("TARGET_CREDENTIALS_SECRET", TARGET_SECRET)):
        stack.secretsmanager.put_secret_value(SecretId=env[variable], SecretString=json.dumps(value))
    stack.poller.module = None  # a new container: it reads the new secret
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)  # from here on, everything the pipeline says is searched

    # The forwarder, as Lambda runs it: the handler's exception is what the runtime logs.
    messages = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])["Attributes"]
    forwarder_error: BaseException | None = None
    try:
        answer = stack.forwarder.invoke(sqs_event(messages, arn["QueueArn"]))
    except Exception as exc:  # a bad secret fails the whole invocation, as the runtime would log it
        forwarder_error = exc
    else:  # or, if the forwarder settles it per record, every record must come back
        assert len(answer["batchItemFailures"]) == len(messages)
    # The rest of the pipeline keeps running on the bad secrets: SQS redelivers, the poller polls.
    stack.event_source().drain(max_seconds=4)
    with pytest.raises(Exception) as poller_error:
        stack.poll()
    code = cli.main(["reexport", "--since", "2026-11-01T00:00:00Z", "--function", "poller"])
    json_code = cli.main(["reexport", "--since", "2026-11-01T00:00:00Z", "--function", "poller", "--json"])
    out, err = capfd.readouterr()

    everything = "\n".join(
        [caplog.text, out, err, formatted(poller_error.value)]
        + ([formatted(forwarder_error)] if forwarder_error else [])
        + [json.dumps(r.__dict__, default=str) for r in caplog.records]
    )
    assert_no_secret(everything)
    assert code == json_code == cli.EXIT_FAILURE
    assert stack.sandbox.exported(SYSTEM) == set()
    assert stack.receiver.deliveries == []
    for error, secret in ((forwarder_error, "target"), (poller_error.value, "traede")):
        if error is not None:
            assert isinstance(error, CredentialsError)
            assert f"/{secret}" in str(error)  # names the secret (traede-export-<suffix>/<secret>)
    assert "CredentialsError" in err
