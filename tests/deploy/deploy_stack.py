"""Deploys template.yaml the way `sam deploy` does, into moto, and runs it under its own roles.

* `MotoAccount`: moto in a process of its own (`iam_moto.py`) with IAM authorization that the
  test switches on after deploying; an administrator user does the deploying.
* `translate`: the SAM CLI's own translator (samtranslator) turns template.yaml into plain
  CloudFormation, with CodeUri/ContentUri pointing at zips in S3 as `sam package` leaves them.
* `Deployment`: the stack as moto's CloudFormation created it, its outputs, each function's
  deployed configuration, and a `Container` per function running under credentials of that
  function's own role (STS AssumeRole).

What moto 5.2.5's CloudFormation lacks is created alongside or left out, each said where it
happens: the secrets (`AWS::SecretsManager::Secret`: created here and passed as
ExistingTraedeSecretArn/ExistingTargetSecretArn), the SQS event source mapping (moto would run
the function in Docker on every send: the test's `SqsEventSource` polls with the forwarder's
role instead, configured from the mapping's translated properties), and the alarms,
EventInvokeConfig and schedule (moto skips them with a warning; nothing here needs them).

Other moto 5.2.5 gaps, worked around where they are met (iam_moto.py lists those it patches):
* With IAM on, moto's Lambda API failed signature checks on every GET (iam_moto.py, gap 6, closes
  that, so the operator's `pending --stack` reads the poller's configuration under IAM); the
  functions' configuration is still read while IAM is off, and the functions are invoked through
  their containers.
* AssumeRole on a role whose trust policy names only a Service crashes moto's trust check:
  the roles are assumed (Lambda's part) before IAM is switched on; the trust policies are
  checked on the translated template (test_least_privilege.py).
* GetRolePolicy answers a CloudFormation-made policy as a Python repr, not JSON.
* Parameters' AllowedPattern is not enforced, and a log group's Arn lacks AWS's ":*" suffix.
* StartMessageMoveTask is not implemented: `redrive` falls back to moving batch by batch.
* Some JSON services' denials come back in XML (botocore then reports the code as "403").
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from traede_local.template import load_template

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ARTIFACTS = "deploy-artifacts"
NOT_IN_MOTO_CFN = {"AWS::Lambda::EventSourceMapping"}  # left out here: see the module docstring

Credentials = dict[str, str]


def _environment(credentials: Credentials, endpoint: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean process environment: nothing of the test process's own AWS settings leaks in."""
    passed_on = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")
    keep = {k: v for k, v in os.environ.items() if k in passed_on}
    return {
        **keep,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **credentials,
        **(extra or {}),
    }


def _credentials(key: str, secret: str, token: str | None = None) -> Credentials:
    found = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    if token:
        found["AWS_SESSION_TOKEN"] = token
    return found


class MotoAccount:
    """One AWS account in moto, in its own process, with IAM enforcement under the test's control."""

    def __init__(self, workdir: Path) -> None:
        self.audit_path = workdir / "iam-audit.jsonl"
        self.audit_path.write_text("")
        self._process = subprocess.Popen(
            [sys.executable, str(HERE / "iam_moto.py"), str(self.audit_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_environment(_credentials("testing", "testing"), "http://unused"),
        )
        assert self._process.stdout is not None
        self.endpoint = self._process.stdout.readline().strip()
        if not self.endpoint.startswith("http"):
            raise RuntimeError(f"iam_moto.py did not start (exit {self._process.poll()})")
        # IAM is off until enforce(): create the administrator who deploys.
        iam = self.client("iam", _credentials("testing", "testing"))
        iam.create_user(UserName="deploy-admin")
        admin_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="deploy-admin", PolicyName="admin", PolicyDocument=json.dumps(admin_policy))
        key = iam.create_access_key(UserName="deploy-admin")["AccessKey"]
        self.admin = _credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        c = credentials or self.admin
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=c["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=c["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=c.get("AWS_SESSION_TOKEN"),
        )

    def enforce(self, on: bool) -> None:
        """moto's IAM authorization on (every call checked) or off (the deploying phase)."""
        answer = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"0" if on else b"inf", timeout=10)
        answer.raise_for_status()

    def assume(self, role_arn: str, session: str) -> Credentials:
        """What Lambda does for a function: credentials of its execution role."""
        found = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
        return _credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])

    def user(self, name: str, policy: dict[str, Any]) -> Credentials:
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return _credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def audit(self) -> list[dict[str, Any]]:
        """Every authorization decision since IAM was switched on (principal, action, resource, allowed)."""
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line.strip()]

    def environment(self, credentials: Credentials, extra: dict[str, str] | None = None) -> dict[str, str]:
        return _environment(credentials, self.endpoint, extra)

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)


# ------------------------------------------------------------------------------ translate


def _zip(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(directory))
    return buffer.getvalue()


class _NoManagedPolicies:
    """The translator asks for AWS-managed policy ARNs only when it generates a role: never here."""

    def load(self) -> dict[str, str]:
        return {}


def translate(parameters: dict[str, str], s3: Any = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """template.yaml through samtranslator, code uploaded (to `s3`, if given) as `sam package` would.

    Returns the code directories too: logical id -> the CodeUri/ContentUri directory.
    """
    from samtranslator.translator.transform import transform

    template = load_template()
    code_dirs: dict[str, Path] = {}
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                code_dirs[logical] = ROOT / props[key]
                if s3 is not None:
                    s3.put_object(Bucket=ARTIFACTS, Key=f"{logical}.zip", Body=_zip(ROOT / props[key]))
                props[key] = f"s3://{ARTIFACTS}/{logical}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator reads the region from here
    return dict(transform(template, parameters, _NoManagedPolicies())), code_dirs


# ------------------------------------------------------------------------------ deploy


@dataclass
class Container:
    """A function running in its own process under its role's credentials, behind Lambda's Invoke API."""

    name: str
    url: str
    timeout: int
    log: Path
    process: subprocess.Popen[str]
    credentials: Credentials  # its role's, from AssumeRole

    @property
    def budget(self) -> float:
        return float(self.timeout)

    def invoke(self, event: dict[str, Any]) -> Any:
        """Synchronous invoke; a function error raises, as Lambda's SQS integration sees it."""
        answer = requests.post(f"{self.url}/2015-03-31/functions/{self.name}/invocations", json=event, timeout=300)
        payload = answer.json()
        if answer.headers.get("X-Amz-Function-Error"):
            raise RuntimeError(f"{self.name} failed: {payload}")
        return payload

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@dataclass
class Deployment:
    account: MotoAccount
    name: str
    parameters: dict[str, str]
    template: dict[str, Any]  # as translated, before anything was left out
    code_dirs: dict[str, Path]
    outputs: dict[str, str] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> configuration
    containers: dict[str, Container] = field(default_factory=dict)

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def function_with_event(self, kind: str) -> str:
        """Logical id of the function whose SAM event has this type (ScheduleV2, SQS)."""
        for logical, resource in load_template()["Resources"].items():
            events = resource.get("Properties", {}).get("Events", {})
            if any(e.get("Type") == kind for e in events.values()):
                return str(logical)
        raise LookupError(kind)

    def role_arn(self, function: str) -> str:
        return str(self.functions[function]["Role"])

    def start(self, function: str, workdir: Path) -> Container:
        """Lambda's part: assume the function's role, then run it with its deployed environment."""
        config = self.functions[function]
        credentials = self.account.assume(config["Role"], config["FunctionName"])
        variables = {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}
        env = self.account.environment(credentials, {**variables, "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"]})
        spec = {
            "name": config["FunctionName"],
            "handler": config["Handler"],
            "code_dir": str(self.code_dirs[function]),
            "timeout": config["Timeout"],
        }
        log = workdir / f"{config['FunctionName']}.log"
        process = subprocess.Popen(
            [sys.executable, str(HERE / "lambda_container.py"), json.dumps(spec), str(log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"{config['FunctionName']} did not start: {log.read_text() if log.exists() else ''}")
        container = Container(config["FunctionName"], url, int(config["Timeout"]), log, process, credentials)
        self.containers[function] = container
        return container

    def stop(self) -> None:
        for container in self.containers.values():
            container.stop()


def deploy(account: MotoAccount, name: str, parameters: dict[str, str]) -> Deployment:
    """Create the stack from the translated template in moto's CloudFormation, as the administrator."""
    s3 = account.client("s3")
    if ARTIFACTS not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=ARTIFACTS)
    template, code_dirs = translate(parameters, s3)
    deployable = copy.deepcopy(template)
    for logical in [k for k, v in deployable["Resources"].items() if v["Type"] in NOT_IN_MOTO_CFN]:
        del deployable["Resources"][logical]
    cfn = account.client("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(deployable),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],  # what samconfig.toml asks for: the roles have generated names
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    deployment = Deployment(account, name, parameters, template, code_dirs)
    deployment.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for summary in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]:
        deployment.physical[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    lam = account.client("lambda")  # read while IAM is off: moto's Lambda API fails signatures with it on
    for logical in deployment.resources_of("AWS::Lambda::Function"):
        deployment.functions[logical] = lam.get_function_configuration(FunctionName=deployment.physical[logical])
    return deployment
