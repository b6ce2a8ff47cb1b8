"""The embedded default: moto, the Traede sandbox and a local receiving system, wired by the template.

`LocalStack` creates the template's queues in a moto server and its table in moto or DynamoDB
Local (`LocalOptions.dynamodb`, or a shared `dynamodb_endpoint`), fills the secrets, and loads
both functions with the environment the template gives them. Tests, the soak
run, the benchmark and `traede-local` all use it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, Unpack, cast

import boto3

from traede_local.dynamodb_local import ENDPOINT_VARIABLE, DynamoDBLocal, answers, free_port, stop_process
from traede_local.faults import Faults, ReceiverFaults
from traede_local.lambda_runtime import Invokable, LocalFunction, SqsEventSource, queue_depth
from traede_local.receiver import ReceivingSystem
from traede_local.sandbox import TraedeSandbox, wall_clock
from traede_local.seed import seed_large_orders, seed_orders
from traede_local.template import Resolver, functions, load_template, resources_of_type
from traede_ops.ops import peek_messages

if TYPE_CHECKING:  # boto3-stubs
    from mypy_boto3_s3.type_defs import LifecycleRuleTypeDef

REGION = "us-east-1"
TARGET_AUTH_HEADER = "X-Api-Key"


# The template's timings that the local stack scales down with the queue's visibility timeout
# (420 s there, `visibility_timeout` here): a failed POST's hold on its delivery lease is about a
# sixth of the visibility timeout in AWS (the lease, about 70 s), so none here.
SCALED = {"UNANSWERED_POST_HOLD_SECONDS": "0"}


@dataclass
class LocalOptions:
    orders: int = 40
    large: int = 0  # orders of about 1.5 MiB each, seeded after the others (ids follow theirs)
    system_id: str = "local-erp"
    seed: int = 1
    paging: str = "paged"
    traede_faults: Faults = field(default_factory=Faults)
    target_faults: ReceiverFaults = field(default_factory=ReceiverFaults)
    reject_ids: frozenset[int] = frozenset()
    store_dir: Path | None = None
    visibility_timeout: int = 1  # seconds; the template's, scaled down so redeliveries come quickly
    parameters: dict[str, str] = field(default_factory=dict)  # template parameter overrides
    mapping: str | None = None  # TargetMapping: a bundled mapping's file name, or an absolute path
    target_path: str = ""  # appended to the local receiver's URL, e.g. "/{id}" for placeholders
    overrides: dict[str, str] = field(default_factory=dict)  # environment overrides (tests only)
    # Point at a real Traede account or receiving system instead of the local servers.
    traede_url: str | None = None
    traede_credentials: dict[str, str] | None = None
    target_url: str | None = None
    target_headers: dict[str, str] | None = None
    # Where the ledger table lives when no DynamoDB endpoint is given: moto's DynamoDB (starts
    # instantly) or a DynamoDB Local started for this stack (atomic conditional writes, ~3 s of JVM).
    dynamodb: Literal["moto", "local"] = "moto"
    traede_clock: Callable[[], datetime] = wall_clock  # the sandbox's time, e.g. a ManualClock


class StackOptions(TypedDict, total=False):
    """`LocalOptions`' fields as keyword arguments (tests/unit checks that the two agree)."""

    orders: int
    large: int
    system_id: str
    seed: int
    paging: str
    traede_faults: Faults
    target_faults: ReceiverFaults
    reject_ids: frozenset[int]
    store_dir: Path | None
    visibility_timeout: int
    parameters: dict[str, str]
    mapping: str | None
    target_path: str
    overrides: dict[str, str]
    traede_url: str | None
    traede_credentials: dict[str, str] | None
    target_url: str | None
    target_headers: dict[str, str] | None
    dynamodb: Literal["moto", "local"]
    traede_clock: Callable[[], datetime]


class MakeStack(Protocol):
    """The tests' `make_stack` fixture: a started stack, stopped when the test ends."""

    def __call__(self, **options: Unpack[StackOptions]) -> LocalStack: ...


def _lifecycle_rule(rule: dict[str, Any]) -> LifecycleRuleTypeDef:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"], "Filter": {"Prefix": ""}}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return cast("LifecycleRuleTypeDef", out)


class MotoServer:
    """moto's app on a threaded loopback server.

    The ledger's tables live in DynamoDB Local wherever concurrency matters (tests, soak, benchmark):
    moto checks a conditional write's condition and applies it in separate steps without a lock, so
    two overlapping writes to one item can both pass, where DynamoDB makes each write atomic.
    """

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MotoProcess:
    """moto's own `moto_server` in a child process, for the benchmark: there moto's CPU does not
    contend for this process's GIL with the servers and threads that share it with the handlers."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> str:
        for _ in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
            self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                if answers(endpoint):
                    self.endpoint = endpoint
                    use_moto(endpoint)
                    return endpoint
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("moto_server did not start in 3 tries")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
        self.endpoint = ""


def use_moto(endpoint: str) -> None:
    """Send boto3 in this process (and in the processes it starts) to the moto server at `endpoint`."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    os.environ.pop("AWS_PROFILE", None)


def start_moto() -> MotoServer:
    """A moto server on loopback; boto3 everywhere in this process then talks to it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request otherwise
    server = MotoServer()
    use_moto(server.endpoint)
    return server


class LocalStack:
    def __init__(
        self,
        options: LocalOptions | None = None,
        moto_endpoint: str | None = None,
        dynamodb_endpoint: str | None = None,
    ) -> None:
        """`moto_endpoint`/`dynamodb_endpoint`: servers shared with others; otherwise the stack starts its own."""
        self.options = options or LocalOptions()
        self._moto: Any = None
        self._moto_endpoint = moto_endpoint
        self._dynamodb_local: DynamoDBLocal | None = None
        self._dynamodb_endpoint = dynamodb_endpoint
        self._saved_dynamodb_variable: str | None = None
        self._sandbox: TraedeSandbox | None = None
        self._receiver: ReceivingSystem | None = None

    @property
    def sandbox(self) -> TraedeSandbox:
        """The local Traede; LookupError when `LocalOptions.traede_url` points at a real one."""
        if self._sandbox is None:
            raise LookupError("this stack has no Traede sandbox: it talks to LocalOptions.traede_url")
        return self._sandbox

    @property
    def receiver(self) -> ReceivingSystem:
        """The local receiving system; LookupError when `LocalOptions.target_url` points at a real one."""
        if self._receiver is None:
            raise LookupError("this stack has no local receiving system: it talks to LocalOptions.target_url")
        return self._receiver

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        o = self.options
        if self._moto_endpoint:
            os.environ["AWS_ENDPOINT_URL"] = self._moto_endpoint
        else:
            self._moto = start_moto()
        self._route_dynamodb()
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        suffix = secrets.token_hex(3)  # several stacks may share one moto server

        traede_url, traede_creds = o.traede_url, o.traede_credentials
        if traede_url is None:
            traede_creds = {"access_token": "tok-" + secrets.token_hex(12), "app_key": "app-" + secrets.token_hex(8)}
            self._sandbox = TraedeSandbox(
                seed_orders(o.orders, seed=o.seed) + seed_large_orders(o.large, start_id=1001 + o.orders, seed=o.seed),
                access_token=traede_creds["access_token"],
                app_key=traede_creds["app_key"],
                faults=o.traede_faults,
                paging=o.paging,
                clock=o.traede_clock,
            )
            traede_url = self._sandbox.start()
        target_url, target_headers = o.target_url, o.target_headers
        if target_url is None:
            target_headers = {TARGET_AUTH_HEADER: "key-" + secrets.token_hex(12)}
            self._receiver = ReceivingSystem(
                store_dir=o.store_dir,
                faults=o.target_faults,
                reject_ids=set(o.reject_ids),
                required_headers=target_headers,
                expect_order=not (o.mapping or o.parameters.get("TargetMapping")),
            )
            target_url = self._receiver.start() + o.target_path
        self.credentials = {"traede": traede_creds or {}, "target": target_headers or {}}

        traede_secret = self._secret(f"traede-export-{suffix}/traede", traede_creds or {})
        target_secret = self._secret(f"traede-export-{suffix}/target", target_headers or {})
        self.template = load_template()
        self.resolver = Resolver(
            self.template,
            parameters={
                "SystemId": o.system_id,
                "TraedeApiUrl": traede_url,
                "TargetUrl": target_url,
                "ExistingTraedeSecretArn": traede_secret,
                "ExistingTargetSecretArn": target_secret,
                **({"TargetMapping": o.mapping} if o.mapping else {}),
                **o.parameters,
            },
        )
        self._create_resources(suffix)
        specs = functions(self.template, self.resolver)
        self.poller = self._function(specs, "ScheduleV2")
        self.forwarder = self._function(specs, "SQS")
        self.queue_url = self._queue_of_forwarder()
        self.dlq_url = self.forwarder.environment["DLQ_URL"]
        self.table = self.forwarder.environment["LEDGER_TABLE"]
        self.bucket = self.forwarder.environment["LARGE_ORDER_BUCKET"]
        return self

    def stop(self) -> None:
        for server in (self._sandbox, self._receiver):
            if server is not None:
                server.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._dynamodb_local is not None:
            self._dynamodb_local.stop()
            self._dynamodb_local = None
        if self._saved_dynamodb_variable is None:
            os.environ.pop(ENDPOINT_VARIABLE, None)
        else:
            os.environ[ENDPOINT_VARIABLE] = self._saved_dynamodb_variable

    def _route_dynamodb(self) -> None:
        """Point boto3's DynamoDB calls (only those) at the chosen engine; `stop()` puts the variable back."""
        self._saved_dynamodb_variable = os.environ.get(ENDPOINT_VARIABLE)
        endpoint = self._dynamodb_endpoint
        if endpoint is None and self.options.dynamodb == "local":
            self._dynamodb_local = DynamoDBLocal()
            endpoint = self._dynamodb_local.start()
        if endpoint is None:
            os.environ.pop(ENDPOINT_VARIABLE, None)  # moto, through AWS_ENDPOINT_URL
        else:
            os.environ[ENDPOINT_VARIABLE] = endpoint

    # -- wiring from the template ------------------------------------------------------
    def _secret(self, name: str, value: dict[str, str]) -> str:
        answer = self.secretsmanager.create_secret(Name=name, SecretString=json.dumps(value))
        return str(answer["ARN"])

    def _create_resources(self, suffix: str) -> None:
        r = self.resolver
        queues = resources_of_type(self.template, "AWS::SQS::Queue")
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical, resource in sorted(queues.items(), key=lambda kv: "RedrivePolicy" in kv[1]["Properties"]):
            props = r.resolve(resource.get("Properties", {}))
            attributes = {
                k: (json.dumps(v) if isinstance(v, dict) else str(v))
                for k, v in props.items()
                if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "DelaySeconds")
            }
            url = self.sqs.create_queue(QueueName=f"{logical}-{suffix}", Attributes=attributes)["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            r.refs[logical] = url
            r.attrs[(logical, "Arn")] = arn
            r.attrs[(logical, "QueueUrl")] = url
            r.attrs[(logical, "QueueName")] = f"{logical}-{suffix}"
        for logical, resource in resources_of_type(self.template, "AWS::DynamoDB::Table").items():
            props = r.resolve(resource["Properties"])
            name = f"{logical}-{suffix}"
            self.dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode="PAY_PER_REQUEST",
            )
            r.refs[logical] = name
            r.attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:123456789012:table/{name}"

        for logical, resource in resources_of_type(self.template, "AWS::S3::Bucket").items():
            self._bucket(logical, r.resolve(resource.get("Properties", {})), suffix)

    def _bucket(self, logical: str, props: dict[str, Any], suffix: str) -> None:
        """The bucket as the template configures it: public access blocked, encryption, lifecycle."""
        name = f"{logical.lower()}-{suffix}"
        self.s3.create_bucket(Bucket=name)
        if "PublicAccessBlockConfiguration" in props:
            self.s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "BucketEncryption" in props:
            self.s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                    ]
                },
            )
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        if rules:
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]},
            )
        self.resolver.refs[logical] = name
        self.resolver.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"

    def large_objects(self) -> list[str]:
        """Keys in the large-order bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def _function(self, specs: dict[str, Any], event_type: str) -> LocalFunction:
        for spec in specs.values():
            if any(e.get("Type") == event_type for e in spec.events.values()):
                return LocalFunction(spec, overrides={**SCALED, **self.options.overrides})
        raise LookupError(f"template.yaml has no function with a {event_type} event")

    def _forwarder_event(self) -> dict[str, Any]:
        return next(e for e in self.forwarder.spec.events.values() if e.get("Type") == "SQS")

    def _queue_of_forwarder(self) -> str:
        arn = self._forwarder_event()["Properties"]["Queue"]
        for logical, value in self.resolver.attrs.items():
            if value == arn and logical[1] == "Arn":
                return self.resolver.refs[logical[0]]
        raise LookupError(f"no local queue for {arn}")

    # -- running -------------------------------------------------------------------------
    def event_source(self, function: Invokable | None = None) -> SqsEventSource:
        batch_size = int(self._forwarder_event()["Properties"].get("BatchSize", 10))
        return SqsEventSource(
            self.sqs,
            self.queue_url,
            function or self.forwarder,
            batch_size=batch_size,
            visibility_timeout=self.options.visibility_timeout,
        )

    def poll(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self.poller.invoke(event or {}))

    def queue_depth(self, url: str) -> int:
        return queue_depth(self.sqs, url)

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Everything in the DLQ, left in place."""
        return peek_messages(self.sqs, self.dlq_url, wait_seconds=0)
