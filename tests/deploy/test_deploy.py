"""The stack as CloudFormation creates it, running under its own IAM roles with IAM enforced.

Two stacks (system ids sys-a and sys-b) are deployed side by side in one moto account from the
SAM-translated template.yaml, both fed by one Traede sandbox, each with its own receiving
system. Then moto's IAM authorization is switched on and every call is made as AWS would make
it: each function in its own process with its deployed environment and its own role's
credentials (STS AssumeRole), the SQS event source with the forwarder's role, and the operator
CLI (`traede-export --stack NAME`) under the operator policy in docs/deploy-and-security.md.
See deploy_stack.py for what moto's CloudFormation lacks and how this works around it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from deploy_stack import ACCOUNT, REGION, Deployment, MotoAccount, deploy
from least_privilege import ALLOWED, FUNCTION_ROLES, SECRET_PARAMETERS

from traede_local.events import load_event
from traede_local.lambda_runtime import SqsEventSource
from traede_local.receiver import ReceivingSystem
from traede_local.sandbox import TraedeSandbox
from traede_local.seed import seed_large_orders, seed_orders

ROOT = Path(__file__).resolve().parents[2]
DOC = "docs/deploy-and-security.md"  # where operators find the policy
CLI = Path(sys.executable).parent / "traede-export"
ORDERS = 12  # seeded: ids 1001..1012; 1004 is a draft and 1008 closed (not exported by default)
LARGE = 1013  # about 1.5 MiB: travels through the large-order bucket (claim-check)
ELIGIBLE = {1001, 1002, 1003, 1005, 1006, 1007, 1009, 1010, 1011, 1012, LARGE}
INVALID = 9002  # added before stack b's poll: an export entry without `updated_at`
REJECTED = 1002  # the receiving system of sys-a refuses it (4xx) until the test "fixes" it
TRAEDE = {"access_token": "tok-deploy-test", "app_key": "app-deploy-test"}


def operator_policy(stack: str, traede_secret_arn: str) -> dict[str, Any]:
    """The documented operator policy, for this stack: the one document operators copy."""
    doc = (ROOT / DOC).read_text()
    section = doc.split("## IAM policy for operators", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block, f"{DOC}: no JSON policy under 'IAM policy for operators'"
    text = block.group(1).replace("TRAEDE_SECRET_ARN", traede_secret_arn)
    text = text.replace("REGION", REGION).replace("ACCOUNT", ACCOUNT).replace("STACK", stack)
    return dict(json.loads(text))


@dataclass
class Stack:
    deployment: Deployment
    receiver: ReceivingSystem
    system_id: str
    secrets: dict[str, str]  # TraedeSecret / TargetSecret -> ARN (created alongside)
    operator: dict[str, str] = field(default_factory=dict)  # credentials under the documented operator policy
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.deployment.name)

    def arn(self, logical: str) -> str:
        """The ARN of one of this stack's resources (what the role statements name)."""
        d = self.deployment
        if logical in self.secrets:
            return self.secrets[logical]
        physical = d.physical[logical]
        kind = d.template["Resources"][logical]["Type"]
        return {
            "AWS::SQS::Queue": lambda: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical.rsplit('/', 1)[-1]}",
            "AWS::DynamoDB::Table": lambda: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::Logs::LogGroup": lambda: f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}",
            "AWS::Lambda::Function": lambda: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::S3::Bucket": lambda: f"arn:aws:s3:::{physical}",
        }[kind]()

    def role_of(self, function: str) -> str:
        return str(self.deployment.role_arn(function))

    def as_role(self, function: str, service: str) -> Any:
        """A client with the credentials Lambda gives this function (its own role)."""
        if (function, service) not in self._clients:
            credentials = self.deployment.containers[function].credentials
            self._clients[function, service] = self.deployment.account.client(service, credentials)
        return self._clients[function, service]

    def cli(self, *argv: str, lambda_url: str | None = None) -> tuple[int, Any]:
        """`traede-export COMMAND --stack NAME --json ...` as the operator, in its own process."""
        extra = {"AWS_ENDPOINT_URL_LAMBDA": lambda_url} if lambda_url else {}
        env = self.deployment.account.environment(self.operator, extra)
        done = subprocess.run(
            [str(CLI), argv[0], "--stack", self.name, "--json", *argv[1:]],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"not JSON: {done.stdout}\n{done.stderr}") from None


@dataclass
class World:
    account: MotoAccount
    sandbox: TraedeSandbox
    stacks: dict[str, Stack]
    workdir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("deploy")
    account = MotoAccount(workdir)
    orders = seed_orders(ORDERS) + seed_large_orders(1, start_id=LARGE)
    sandbox = TraedeSandbox(orders, access_token=TRAEDE["access_token"], app_key=TRAEDE["app_key"])
    traede_url = sandbox.start()
    stacks: dict[str, Stack] = {}
    try:
        sm = account.client("secretsmanager")
        for suffix, system_id, extra in (("a", "sys-a", {}), ("b", "sys-b", {"IncludeOpen": "true"})):
            name = f"traede-export-{suffix}"
            headers = {"X-Api-Key": f"key-{suffix}"}
            receiver = ReceivingSystem(
                store_dir=workdir / f"received-{suffix}",
                required_headers=headers,
                reject_ids={REJECTED} if suffix == "a" else set(),
            )
            target_url = receiver.start()
            # Created alongside: moto's CloudFormation has no AWS::SecretsManager::Secret.
            secrets = {
                "TraedeSecret": sm.create_secret(Name=f"{name}/traede", SecretString=json.dumps(TRAEDE))["ARN"],
                "TargetSecret": sm.create_secret(Name=f"{name}/target", SecretString=json.dumps(headers))["ARN"],
            }
            # The local servers speak http, which the parameters' https-only AllowedPattern refuses
            # in AWS; moto's CloudFormation does not check patterns.
            parameters = {
                "SystemId": system_id,
                "TraedeApiUrl": traede_url,
                "TargetUrl": target_url,
                "ExistingTraedeSecretArn": secrets["TraedeSecret"],
                "ExistingTargetSecretArn": secrets["TargetSecret"],
                **extra,
            }
            stack = Stack(deploy(account, name, parameters), receiver, system_id, secrets)
            stacks[suffix] = stack  # stopped in `finally`, even if what follows fails
            stack.operator = account.user(f"operator-{suffix}", operator_policy(name, secrets["TraedeSecret"]))
            for function in FUNCTION_ROLES:
                stack.deployment.start(function, workdir)
        account.enforce(True)
        yield World(account, sandbox, stacks, workdir)
    finally:
        account.enforce(False)
        for stack in stacks.values():
            stack.deployment.stop()
            stack.receiver.stop()
        sandbox.stop()
        account.stop()


def event_source(stack: Stack) -> SqsEventSource:
    """Lambda's SQS event source as translated, polling with the forwarder's role (moto cannot run the mapping)."""
    (mapping,) = stack.deployment.resources_of("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["OrderQueue", "Arn"]}
    assert props["FunctionName"] == {"Ref": "ForwarderFunction"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    return SqsEventSource(
        stack.as_role("ForwarderFunction", "sqs"),
        stack.deployment.outputs["QueueUrl"],
        stack.deployment.containers["ForwarderFunction"],
        batch_size=int(props["BatchSize"]),
        visibility_timeout=1,  # redeliveries in a second, not the queue's 420 s
    )


@pytest.fixture(scope="module")
def run(world: World) -> dict[str, Any]:
    """The whole pipeline, once, with IAM enforced: poll, deliver, mark, park, status, replay, redrive, re-export."""
    a, b = world.stacks["a"], world.stacks["b"]
    poller = a.deployment.containers["PollerFunction"]
    steps: dict[str, Any] = {}
    steps["poll"] = poller.invoke(load_event("scheduled"))
    steps["drain"] = event_source(a).drain(max_seconds=60)
    steps["marked"] = world.sandbox.exported("sys-a")
    steps["delivered"] = set(a.receiver.keys_by_order())
    steps["pending"] = a.cli("pending")  # the poller's query, the Traede secret, the ledger's view
    steps["order_refused"] = a.cli("order", str(REJECTED))
    steps["order_marked"] = a.cli("order", str(LARGE))
    steps["status_stuck"] = a.cli("status", "--age-source", "cloudwatch")  # what `auto` does against AWS
    replay_file = world.workdir / "replay-1001.json"
    replay_file.write_text(json.dumps([world.sandbox.order(1001), world.sandbox.order(LARGE)]))  # LARGE via S3
    steps["replay"] = a.cli("replay", str(replay_file))
    steps["drain_replay"] = event_source(a).drain(max_seconds=60)
    a.receiver.reject_ids.clear()  # the operator fixed the cause of the rejection
    steps["redrive"] = a.cli("redrive")
    steps["drain_redrive"] = event_source(a).drain(max_seconds=60)
    steps["marked_after_redrive"] = world.sandbox.exported("sys-a")
    time.sleep(1.1)  # `since` has whole seconds: every mark so far must lie before it
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    steps["reexport"] = a.cli("reexport", "--since", since, lambda_url=poller.url)
    steps["drain_reexport"] = event_source(a).drain(max_seconds=60)
    steps["status_healthy"] = a.cli("status", "--age-source", "cloudwatch")
    not_an_order = world.sandbox.order(1001) | {"id": INVALID}
    del not_an_order["updated_at"]  # an export entry that is not a valid production order
    world.sandbox.add_orders([not_an_order])
    steps["poll_b"] = b.deployment.containers["PollerFunction"].invoke(load_event("scheduled"))
    steps["drain_b"] = event_source(b).drain(max_seconds=60)
    steps["audit"] = world.account.audit()
    return steps


def test_outputs_are_what_the_cli_reads(world: World) -> None:
    from traede_ops.ops import STACK_OUTPUTS

    for stack in world.stacks.values():
        assert set(STACK_OUTPUTS) <= set(stack.deployment.outputs), stack.name
        assert stack.deployment.outputs["PollerFunctionName"] == f"{stack.name}-poller"


def test_the_pipeline_runs_without_access_denied(run: dict[str, Any], world: World) -> None:
    denied = [r for r in run["audit"] if not r["allowed"]]
    assert not denied, denied
    for stack in world.stacks.values():
        for container in stack.deployment.containers.values():
            log = container.log.read_text()
            assert "AccessDenied" not in log, container.name


def test_poll_deliver_mark_and_park(run: dict[str, Any], world: World) -> None:
    assert run["poll"]["enqueued"] == len(ELIGIBLE) and run["poll"]["large"] == 1
    assert run["delivered"] == ELIGIBLE - {REJECTED}
    assert run["marked"] == ELIGIBLE - {REJECTED}  # never marked what the ERP refused
    code, status = run["status_stuck"]
    assert code == 1 and status["dlq"]["total"] == 1, status  # the refused order, parked by the forwarder
    assert status["ledger"]["orders"] == len(ELIGIBLE)


def test_replay_redrive_and_reexport(run: dict[str, Any], world: World) -> None:
    code, replay = run["replay"]
    assert code == 0 and replay["orders_sent"] == 2
    code, redrive = run["redrive"]
    assert code == 0 and redrive["moved"] == 1, redrive
    assert run["marked_after_redrive"] == ELIGIBLE
    code, reexport = run["reexport"]
    assert code == 0 and reexport["queued"] == len(ELIGIBLE), reexport
    keys = world.stacks["a"].receiver.keys_by_order()
    assert all(any(":reexport:" in k for k in keys[i]) for i in ELIGIBLE)
    code, status = run["status_healthy"]
    assert code == 0 and status["healthy"], status


def test_pending_and_order_run_under_the_operator_policy(run: dict[str, Any], world: World) -> None:
    code, pending = run["pending"]
    assert code == 0, pending
    assert pending["source"] == "the poller traede-export-a-poller" and pending["system_id"] == "sys-a"
    assert [(o["id"], o["ledger"]) for o in pending["orders"]] == [(REJECTED, "refused")]
    code, refused = run["order_refused"]
    assert code == 0 and [v["state"] for v in refused["versions"]] == ["refused"], refused
    (copy,) = refused["dlq"]["copies"]
    assert "HTTP 422" in copy["last_error"] and refused["next"].endswith("then `redrive`")
    code, marked = run["order_marked"]
    assert code == 0 and marked["next"] == "delivered and marked" and marked["dlq"]["copies"] == []
    for output in (pending, refused, marked):
        assert TRAEDE["access_token"] not in json.dumps(output) and TRAEDE["app_key"] not in json.dumps(output)


def test_two_stacks_side_by_side_export_only_their_own_system(run: dict[str, Any], world: World) -> None:
    a, b = world.stacks["a"], world.stacks["b"]
    physical_a = {v for v in a.deployment.physical.values() if v}
    physical_b = {v for v in b.deployment.physical.values() if v}
    assert not physical_a & physical_b, "a resource name collides"
    drafts = {1004}  # sys-b's stack sets IncludeOpen=true: its own selection
    assert run["poll_b"]["enqueued"] == len(ELIGIBLE | drafts)
    assert run["poll_b"]["invalid"] == 1 and INVALID not in b.receiver.keys_by_order()
    assert set(b.receiver.keys_by_order()) == ELIGIBLE | drafts
    assert world.sandbox.exported("sys-b") == ELIGIBLE | drafts
    assert 1004 not in world.sandbox.exported("sys-a") and 1004 not in a.receiver.keys_by_order()
    for stack in (a, b):
        for keys in stack.receiver.keys_by_order().values():
            assert all(k.startswith(f"traede:{stack.system_id}:") for k in keys)


def _logical(stack: Stack, arn: str) -> str:
    """The logical id (or "*") an ARN in moto's audit names, in this stack."""
    resources = dict(stack.deployment.template["Resources"])
    for logical in [*resources, *stack.secrets]:
        try:
            if stack.arn(logical) == arn:
                return str(SECRET_PARAMETERS.get(logical, logical))
            if resources.get(logical, {}).get("Type") == "AWS::S3::Bucket" and arn.startswith(stack.arn(logical) + "/"):
                return f"{logical}/*"  # an object of the bucket
        except (KeyError, TypeError):
            continue
    return arn


def test_every_grant_is_used_and_nothing_else(run: dict[str, Any], world: World) -> None:
    """moto's record of the run, per role, against least_privilege.ALLOWED (rows used by others excepted).

    Both stacks are the same template, so a row counts as used when either stack's role used it.
    """
    from least_privilege import READ_BACK, RUNTIME, S3_NOT_FOUND, SCHEDULER, XRAY

    for function, role in FUNCTION_ROLES.items():
        used_anywhere: set[tuple[str, str]] = set()
        for stack in world.stacks.values():
            role_name = stack.role_of(function).rsplit("/", 1)[-1]
            used = {
                (r["action"], _logical(stack, r["resource"]))
                for r in run["audit"]
                if r["allowed"] and f":assumed-role/{role_name}/" in r["principal"]
            }
            assert used <= set(ALLOWED[role]), f"{stack.name} {role} used {sorted(used - set(ALLOWED[role]))}"
            used_anywhere |= used
        declared = {
            row for row, why in ALLOWED[role].items() if why not in (RUNTIME, XRAY, SCHEDULER, S3_NOT_FOUND, READ_BACK)
        }
        assert declared <= used_anywhere, f"{role} never used {sorted(declared - used_anywhere)}: drop the grant"


# ------------------------------------------------------------------------------ the edges of each role

DENIED = {"AccessDenied", "AccessDeniedException"}
POLLER, FORWARDER = "PollerFunction", "ForwarderFunction"


def _ledger_key(stack: Stack) -> dict[str, Any]:
    return {"pk": {"S": f"order#{stack.system_id}#1001"}}


# (what the design claims a role cannot do, the call that tries it). `own` is the role's stack,
# `other` the other stack. Each must end in AccessDenied, not in "not found".
PROBES: dict[str, Any] = {
    "poller cannot read the receiving system's secret": lambda own, other: own.as_role(
        POLLER, "secretsmanager"
    ).get_secret_value(SecretId=own.secrets["TargetSecret"]),
    "forwarder cannot send to the order queue": lambda own, other: own.as_role(FORWARDER, "sqs").send_message(
        QueueUrl=own.deployment.outputs["QueueUrl"], MessageBody="{}"
    ),
    "poller cannot consume the order queue": lambda own, other: own.as_role(POLLER, "sqs").receive_message(
        QueueUrl=own.deployment.outputs["QueueUrl"]
    ),
    "forwarder cannot read the dead-letter queue": lambda own, other: own.as_role(FORWARDER, "sqs").receive_message(
        QueueUrl=own.deployment.outputs["DeadLetterQueueUrl"]
    ),
    "forwarder cannot delete the order queue": lambda own, other: own.as_role(FORWARDER, "sqs").delete_queue(
        QueueUrl=own.deployment.outputs["QueueUrl"]
    ),
    "forwarder cannot put (overwrite) a ledger item": lambda own, other: own.as_role(FORWARDER, "dynamodb").put_item(
        TableName=own.deployment.outputs["LedgerTableName"], Item=_ledger_key(own)
    ),
    "poller cannot put (overwrite) a ledger item": lambda own, other: own.as_role(POLLER, "dynamodb").put_item(
        TableName=own.deployment.outputs["LedgerTableName"], Item=_ledger_key(own)
    ),
    "forwarder of one stack cannot park in the other stack's DLQ": lambda own, other: own.as_role(
        FORWARDER, "sqs"
    ).send_message(QueueUrl=other.deployment.outputs["DeadLetterQueueUrl"], MessageBody="{}"),
    "poller of one stack cannot enqueue on the other stack's queue": lambda own, other: own.as_role(
        POLLER, "sqs"
    ).send_message(QueueUrl=other.deployment.outputs["QueueUrl"], MessageBody="{}"),
    "forwarder of one stack cannot read the other stack's target secret": lambda own, other: own.as_role(
        FORWARDER, "secretsmanager"
    ).get_secret_value(SecretId=other.secrets["TargetSecret"]),
    "forwarder of one stack cannot update the other stack's ledger": lambda own, other: own.as_role(
        FORWARDER, "dynamodb"
    ).update_item(
        TableName=other.deployment.outputs["LedgerTableName"],
        Key=_ledger_key(other),
        UpdateExpression="SET marked_version = :v",
        ExpressionAttributeValues={":v": {"S": "x"}},
    ),
    "forwarder cannot put a ledger item inside a transaction": lambda own, other: own.as_role(
        FORWARDER, "dynamodb"
    ).transact_write_items(
        TransactItems=[{"Put": {"TableName": own.deployment.outputs["LedgerTableName"], "Item": _ledger_key(own)}}]
    ),
    "operator of one stack cannot find the other stack": lambda own, other: own.deployment.account.client(
        "cloudformation", own.operator
    ).describe_stacks(StackName=other.name),
    "operator of one stack cannot scan the other stack's ledger": lambda own, other: own.deployment.account.client(
        "dynamodb", own.operator
    ).scan(TableName=other.deployment.outputs["LedgerTableName"]),
    "operator of one stack cannot send to the other stack's queue": lambda own, other: own.deployment.account.client(
        "sqs", own.operator
    ).send_message(QueueUrl=other.deployment.outputs["QueueUrl"], MessageBody="{}"),
    "operator cannot read the receiving system's credentials": lambda own, other: own.deployment.account.client(
        "secretsmanager", own.operator
    ).get_secret_value(SecretId=own.secrets["TargetSecret"]),
    "operator of one stack cannot read the other stack's Traede credentials": lambda own, other: (
        own.deployment.account.client("secretsmanager", own.operator).get_secret_value(
            SecretId=other.secrets["TraedeSecret"]
        )
    ),
    "operator of one stack cannot read the other stack's poller configuration": lambda own, other: (
        own.deployment.account.client("lambda", own.operator).get_function_configuration(
            FunctionName=other.deployment.outputs["PollerFunctionName"]
        )
    ),
    "operator cannot read the forwarder's configuration": lambda own, other: own.deployment.account.client(
        "lambda", own.operator
    ).get_function_configuration(FunctionName=f"{own.name}-forwarder"),
}
# Every function: no table deletion, no scan of its own ledger or of the other stack's.
for _fn in (POLLER, FORWARDER):
    PROBES[f"{_fn} cannot delete the ledger table"] = lambda own, other, fn=_fn: own.as_role(
        fn, "dynamodb"
    ).delete_table(TableName=own.deployment.outputs["LedgerTableName"])
    PROBES[f"{_fn} cannot scan its own ledger"] = lambda own, other, fn=_fn: own.as_role(fn, "dynamodb").scan(
        TableName=own.deployment.outputs["LedgerTableName"]
    )
    PROBES[f"{_fn} cannot scan another stack's ledger"] = lambda own, other, fn=_fn: own.as_role(fn, "dynamodb").scan(
        TableName=other.deployment.outputs["LedgerTableName"]
    )
    PROBES[f"{_fn} cannot read the other stack's Traede secret"] = lambda own, other, fn=_fn: own.as_role(
        fn, "secretsmanager"
    ).get_secret_value(SecretId=other.secrets["TraedeSecret"])


@pytest.mark.parametrize("claim", sorted(PROBES))
@pytest.mark.parametrize(("own", "other"), [("a", "b"), ("b", "a")])
def test_role_edges(claim: str, own: str, other: str, world: World, run: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as caught:
        PROBES[claim](world.stacks[own], world.stacks[other])
    assert _access_denied(caught.value.response), caught.value.response["Error"]


def _access_denied(response: Mapping[str, Any]) -> bool:
    """moto answers some JSON services' denials in XML, which botocore reports as code "403"."""
    error = response.get("Error", {})
    if error.get("Code") in DENIED:
        return True
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 403 and "<Code>AccessDenied</Code>" in str(error.get("Message", ""))


# ------------------------------------------------------------------------------ the whole matrix
# Every action a function could try on each of a stack's data resources. Whatever
# least_privilege.ALLOWED does not grant must be denied, on the role's own stack and on the other.


def _url(output: str) -> Any:
    return lambda stack: stack.deployment.outputs[output]


def _queue_calls(where: Any) -> dict[str, Any]:
    return {
        "sqs:SendMessage": lambda c, t: c.send_message(QueueUrl=where(t), MessageBody="{}"),
        "sqs:ReceiveMessage": lambda c, t: c.receive_message(QueueUrl=where(t), VisibilityTimeout=0),
        "sqs:DeleteMessage": lambda c, t: c.delete_message(QueueUrl=where(t), ReceiptHandle="probe"),
        "sqs:GetQueueAttributes": lambda c, t: c.get_queue_attributes(QueueUrl=where(t), AttributeNames=["All"]),
        "sqs:SetQueueAttributes": lambda c, t: c.set_queue_attributes(
            QueueUrl=where(t), Attributes={"DelaySeconds": "0"}
        ),
        "sqs:PurgeQueue": lambda c, t: c.purge_queue(QueueUrl=where(t)),
        "sqs:DeleteQueue": lambda c, t: c.delete_queue(QueueUrl=where(t)),
    }


def _table(t: Stack) -> str:
    return str(t.deployment.outputs["LedgerTableName"])


PROBE_KEY = {"pk": {"S": "probe#matrix"}}
TABLE_CALLS: dict[str, Any] = {
    "dynamodb:GetItem": lambda c, t: c.get_item(TableName=_table(t), Key=PROBE_KEY),
    "dynamodb:PutItem": lambda c, t: c.put_item(TableName=_table(t), Item=PROBE_KEY),
    "dynamodb:UpdateItem": lambda c, t: c.update_item(
        TableName=_table(t),
        Key=PROBE_KEY,
        UpdateExpression="SET probe = :p",
        ExpressionAttributeValues={":p": {"N": "1"}},
    ),
    "dynamodb:DeleteItem": lambda c, t: c.delete_item(TableName=_table(t), Key=PROBE_KEY),
    "dynamodb:Scan": lambda c, t: c.scan(TableName=_table(t)),
    "dynamodb:Query": lambda c, t: c.query(
        TableName=_table(t), KeyConditionExpression="pk = :k", ExpressionAttributeValues={":k": PROBE_KEY["pk"]}
    ),
    "dynamodb:BatchGetItem": lambda c, t: c.batch_get_item(RequestItems={_table(t): {"Keys": [PROBE_KEY]}}),
    "dynamodb:BatchWriteItem": lambda c, t: c.batch_write_item(
        RequestItems={_table(t): [{"PutRequest": {"Item": PROBE_KEY}}]}
    ),
    "dynamodb:DescribeTable": lambda c, t: c.describe_table(TableName=_table(t)),
    "dynamodb:DeleteTable": lambda c, t: c.delete_table(TableName=_table(t)),
}


def _secret_calls(logical: str) -> dict[str, Any]:
    return {
        "secretsmanager:GetSecretValue": lambda c, t: c.get_secret_value(SecretId=t.secrets[logical]),
        "secretsmanager:DescribeSecret": lambda c, t: c.describe_secret(SecretId=t.secrets[logical]),
        "secretsmanager:PutSecretValue": lambda c, t: c.put_secret_value(
            SecretId=t.secrets[logical], SecretString="{}"
        ),
    }


def _bucket(t: Stack) -> str:
    return str(t.deployment.outputs["LargeOrderBucketName"])


PROBE_OBJECT = "orders/probe/matrix.json"
OBJECT_CALLS: dict[str, Any] = {
    "s3:PutObject": lambda c, t: c.put_object(Bucket=_bucket(t), Key=PROBE_OBJECT, Body=b"{}"),
    "s3:GetObject": lambda c, t: c.get_object(Bucket=_bucket(t), Key=PROBE_OBJECT),
    "s3:DeleteObject": lambda c, t: c.delete_object(Bucket=_bucket(t), Key=PROBE_OBJECT),
}
BUCKET_CALLS: dict[str, Any] = {
    "s3:ListBucket": lambda c, t: c.list_objects_v2(Bucket=_bucket(t)),
    "s3:PutBucketPolicy": lambda c, t: c.put_bucket_policy(Bucket=_bucket(t), Policy="{}"),
}

MATRIX: dict[str, dict[str, Any]] = {  # resource logical id -> IAM action -> call(client, target stack)
    "OrderQueue": _queue_calls(_url("QueueUrl")),
    "DeadLetterQueue": _queue_calls(_url("DeadLetterQueueUrl")),
    "LedgerTable": TABLE_CALLS,
    "TraedeSecret": _secret_calls("TraedeSecret"),
    "TargetSecret": _secret_calls("TargetSecret"),
    "LargeOrderBucket/*": OBJECT_CALLS,
    "LargeOrderBucket": BUCKET_CALLS,
}
MATRIX_CASES = [
    pytest.param(function, target, resource, action, id=f"{function}-{target}-{resource}-{action}")
    for function, role in FUNCTION_ROLES.items()
    for target in ("own", "other")
    for resource, calls in MATRIX.items()
    for action in calls
    if target == "other" or (action, resource) not in ALLOWED[role]
]


@pytest.mark.parametrize(("function", "target", "resource", "action"), MATRIX_CASES)
def test_what_the_table_does_not_grant_is_denied(
    function: str, target: str, resource: str, action: str, world: World, run: dict[str, Any]
) -> None:
    own = world.stacks["a"]
    aimed_at = own if target == "own" else world.stacks["b"]
    client = own.as_role(function, action.split(":", 1)[0])
    with pytest.raises(ClientError) as caught:
        MATRIX[resource][action](client, aimed_at)
    assert _access_denied(caught.value.response), caught.value.response["Error"]


def test_a_transaction_of_updates_is_authorised_as_update_item(world: World, run: dict[str, Any]) -> None:
    """As in AWS, each item of TransactWriteItems is checked as its own action (ready for the ledger using it)."""
    a = world.stacks["a"]
    table = a.deployment.outputs["LedgerTableName"]
    key = {"pk": {"S": f"order#{a.system_id}#999999"}}  # an id no test reads
    update = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET probe = :p",
        "ExpressionAttributeValues": {":p": {"N": "1"}},
    }
    a.as_role(FORWARDER, "dynamodb").transact_write_items(TransactItems=[{"Update": update}])
    record = [r for r in world.account.audit() if r["api"] == "TransactWriteItems" and r["allowed"]][-1]
    assert record["action"] == "dynamodb:UpdateItem" and record["resource"] == a.arn("LedgerTable")


def test_operator_may_invoke_only_its_own_poller(world: World) -> None:
    """moto's Lambda API cannot check IAM (signatures fail), so this asks moto's policy evaluator."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    a, b = world.stacks["a"], world.stacks["b"]
    policy = IAMPolicy(json.dumps(operator_policy(a.name, a.secrets["TraedeSecret"])))

    def allowed(arn: str) -> bool:
        return policy.is_action_permitted("lambda:InvokeFunction", arn) == PermissionResult.PERMITTED

    assert allowed(a.arn("PollerFunction"))
    assert not allowed(a.arn("ForwarderFunction"))
    assert not allowed(b.arn("PollerFunction"))


def test_schedule_role_may_invoke_only_the_poller(world: World) -> None:
    """moto cannot create the schedule (AWS::Scheduler::Schedule), so its deployed role is asked directly."""
    import ast

    from moto.iam.access_control import IAMPolicy, PermissionResult

    a = world.stacks["a"]
    iam = world.account.client("iam")
    role = a.deployment.physical["PollScheduleRole"]
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    if isinstance(document, str):  # moto answers a CloudFormation-made policy as a Python repr
        document = ast.literal_eval(document)
    policy = IAMPolicy(json.dumps(document))
    for function, expected in (("PollerFunction", True), ("ForwarderFunction", False)):
        result = policy.is_action_permitted("lambda:InvokeFunction", a.arn(function))
        assert (result == PermissionResult.PERMITTED) is expected, function


def test_iam_enforcement_stays_in_the_deploy_tiers_moto(world: World) -> None:
    """The other tiers' moto runs in this process with IAM off; enforcement lives in another process."""
    from moto import settings

    assert float("inf") == settings.INITIAL_NO_AUTH_ACTION_COUNT


def test_the_large_order_bucket_as_deployed(world: World, run: dict[str, Any]) -> None:
    """Encryption as CloudFormation made it, and the objects the design leaves behind.

    moto's CloudFormation applies only BucketEncryption and Tags of a bucket and skips
    AWS::S3::BucketPolicy: the public access block, the TLS-only policy and the lifecycle rule
    are held by tests/unit/test_template.py (and the local stack applies them).
    """
    a = world.stacks["a"]
    s3 = world.account.client("s3")
    bucket = _bucket(a)
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # The design keeps objects after the mark (the lifecycle rule removes them). Content-addressed:
    # the poll and the re-export share one; the replayed file (the order as stored, not as exported) has its own.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert sorted(k.split("/")[1] for k in keys) == [str(LARGE)] * 2
