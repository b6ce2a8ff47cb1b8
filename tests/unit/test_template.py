"""Static checks of template.yaml against the code's contract (no network, no AWS).

The template is the deploy artifact; these tests pin the relations between its numbers
(timeouts, visibility, retries, lease) and the names the code reads and emits.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from traede_export.claim_check import MAX_THRESHOLD_BYTES
from traede_export.config import DEFAULT_INCLUDES, INCLUDABLE, ForwarderConfig, PollerConfig
from traede_export.errors import ConfigError
from traede_export.models import MAX_MARK_BATCH
from traede_local.template import TEMPLATE, load_template

ROOT = Path(__file__).resolve().parents[2]

# Resources whose policies may say "Resource": "*": in a KMS key policy "*" means "this key".
STAR_RESOURCE_ALLOWED = {"AlarmTopicKey"}
# Actions AWS cannot scope to a resource: the only ones a role statement may grant on "*".
UNSCOPABLE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    return load_template()


def _resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in tpl["Resources"].items() if r["Type"] == kind}


def _function(tpl: dict[str, Any], code_uri: str) -> tuple[str, dict[str, Any]]:
    found = [
        (name, r["Properties"])
        for name, r in _resources(tpl, "AWS::Serverless::Function").items()
        if r["Properties"].get("CodeUri", "").rstrip("/") == code_uri
    ]
    assert len(found) == 1, f"expected one function with CodeUri {code_uri}, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def poller(tpl: dict[str, Any]) -> dict[str, Any]:
    return _function(tpl, "functions/poller")[1]


@pytest.fixture(scope="module")
def forwarder(tpl: dict[str, Any]) -> dict[str, Any]:
    return _function(tpl, "functions/forwarder")[1]


def _ref_target(value: Any) -> str:
    """Logical id named by {"Ref": X} or {"Fn::GetAtt": [X, attr]}."""
    assert isinstance(value, dict), value
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def _sqs_event(forwarder: dict[str, Any]) -> dict[str, Any]:
    events: list[dict[str, Any]] = [e["Properties"] for e in forwarder["Events"].values() if e["Type"] == "SQS"]
    assert len(events) == 1
    return events[0]


def _order_queue(tpl: dict[str, Any], forwarder: dict[str, Any]) -> dict[str, Any]:
    queue: dict[str, Any] = tpl["Resources"][_ref_target(_sqs_event(forwarder)["Queue"])]["Properties"]
    return queue


def _global(tpl: dict[str, Any], key: str) -> Any:
    return tpl.get("Globals", {}).get("Function", {}).get(key)


def _environment(tpl: dict[str, Any], fn: dict[str, Any]) -> dict[str, Any]:
    merged = dict((_global(tpl, "Environment") or {}).get("Variables", {}))
    merged.update(fn.get("Environment", {}).get("Variables", {}))
    return merged


def _param_default(tpl: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return tpl["Parameters"][value["Ref"]]["Default"]
    return value


# ---------------------------------------------------------------- forwarder and queue


def test_forwarder_reports_batch_item_failures(forwarder: dict[str, Any]) -> None:
    event = _sqs_event(forwarder)
    assert "ReportBatchItemFailures" in event["FunctionResponseTypes"]
    assert 1 <= event["BatchSize"] <= MAX_MARK_BATCH
    assert event["ScalingConfig"]["MaximumConcurrency"]  # protects the receiving system


def test_forwarder_max_concurrency_is_at_least_two(tpl: dict[str, Any], forwarder: dict[str, Any]) -> None:
    value = _sqs_event(forwarder)["ScalingConfig"]["MaximumConcurrency"]
    if isinstance(value, dict):
        param = tpl["Parameters"][value["Ref"]]
        assert param["MinValue"] >= 2 and param["Default"] >= 2  # AWS minimum
    else:
        assert value >= 2


def test_visibility_timeout_covers_six_forwarder_timeouts(tpl: dict[str, Any], forwarder: dict[str, Any]) -> None:
    queue = _order_queue(tpl, forwarder)
    window = _sqs_event(forwarder).get("MaximumBatchingWindowInSeconds", 0)
    assert queue["VisibilityTimeout"] >= 6 * forwarder["Timeout"] + window


def test_queue_redrives_to_a_dead_letter_queue(tpl: dict[str, Any], forwarder: dict[str, Any]) -> None:
    redrive = _order_queue(tpl, forwarder)["RedrivePolicy"]
    assert redrive["maxReceiveCount"] >= 5
    dlq = tpl["Resources"][_ref_target(redrive["deadLetterTargetArn"])]
    assert dlq["Type"] == "AWS::SQS::Queue"
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_queues_are_encrypted_with_sqs_managed_sse(tpl: dict[str, Any]) -> None:
    """The conscious choice (see the template's comment): SSE-SQS, so no role needs KMS."""
    for name, queue in _resources(tpl, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name
        assert "KmsMasterKeyId" not in queue["Properties"], name
        skips = {s["id"] for s in queue["Metadata"]["checkov"]["skip"] if s.get("comment")}
        assert "CKV_AWS_27" in skips, name


def test_dlq_url_is_the_redrive_target(tpl: dict[str, Any], forwarder: dict[str, Any]) -> None:
    redrive = _order_queue(tpl, forwarder)["RedrivePolicy"]
    assert _ref_target(_environment(tpl, forwarder)["DLQ_URL"]) == _ref_target(redrive["deadLetterTargetArn"])


def test_in_flight_lease_outlasts_the_retry_window(
    tpl: dict[str, Any], poller: dict[str, Any], forwarder: dict[str, Any]
) -> None:
    queue = _order_queue(tpl, forwarder)
    retry_window = queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"]
    lease = _environment(tpl, poller)["IN_FLIGHT_LEASE_SECONDS"]
    assert int(_param_default(tpl, lease)) > retry_window
    if isinstance(lease, dict):  # the parameter cannot be set below the window either
        assert tpl["Parameters"][lease["Ref"]]["MinValue"] > retry_window


# ---------------------------------------------------------------- poller


def test_poller_runs_one_at_a_time(poller: dict[str, Any]) -> None:
    assert poller["ReservedConcurrentExecutions"] == 1


def test_poller_schedule_has_a_retry_policy(poller: dict[str, Any]) -> None:
    schedules = [e["Properties"] for e in poller["Events"].values() if e["Type"] == "ScheduleV2"]
    assert len(schedules) == 1
    retry = schedules[0]["RetryPolicy"]
    assert {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} <= set(retry)


def test_poll_interval_default_matches_schedule_default(tpl: dict[str, Any]) -> None:
    params = tpl["Parameters"]
    match = re.fullmatch(r"rate\((\d+) minutes?\)", params["ScheduleExpression"]["Default"])
    assert match
    assert int(params["PollIntervalSeconds"]["Default"]) == int(match.group(1)) * 60


def test_poller_stale_alarm(tpl: dict[str, Any]) -> None:
    alarms = [
        a["Properties"]
        for a in _resources(tpl, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "PollSucceeded"
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Statistic"] == "Sum" and alarm["EvaluationPeriods"] == 3
    assert alarm["Period"] == {"Ref": "PollIntervalSeconds"}


# ---------------------------------------------------------------- environment and parameters


def variables_read(config_cls: type[PollerConfig] | type[ForwarderConfig]) -> set[str]:
    """The names a config class reads, found by running it on a recording environment."""

    class Recorder(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return default

    seen: set[str] = set()
    with contextlib.suppress(ConfigError):
        config_cls.from_env(Recorder())
    return seen


@pytest.mark.parametrize(
    ("code_uri", "config"), [("functions/poller", PollerConfig), ("functions/forwarder", ForwarderConfig)]
)
def test_every_variable_the_code_reads_is_set(tpl: dict[str, Any], code_uri: str, config: Any) -> None:
    env = _environment(tpl, _function(tpl, code_uri)[1])
    missing = sorted(variables_read(config) - set(env))
    assert not missing, f"{code_uri} reads {missing} but the template does not set them"
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"):
        assert name in env


def test_secrets_are_not_parameters(tpl: dict[str, Any]) -> None:
    suspicious = re.compile(r"token|key|secret|password|credential", re.IGNORECASE)
    allowed = re.compile(r"Existing\w*SecretArn")
    bad = [p for p in tpl["Parameters"] if suspicious.search(p) and not allowed.fullmatch(p)]
    assert not bad
    for name in ("TRAEDE_CREDENTIALS_SECRET",):
        assert "Fn::If" in _global(tpl, "Environment")["Variables"][name]  # created secret or existing ARN


def test_the_default_includes_are_the_ones_pending_asks_for_without_a_stack(tpl: dict[str, Any]) -> None:
    assert tpl["Parameters"]["Includes"]["Default"] == DEFAULT_INCLUDES


def test_includes_pattern_matches_the_code(tpl: dict[str, Any]) -> None:
    param = tpl["Parameters"]["Includes"]
    pattern = re.compile(param["AllowedPattern"])
    assert pattern.fullmatch(param["Default"])
    assert pattern.fullmatch(",".join(sorted(INCLUDABLE)))
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("lines,nonsense")


# ---------------------------------------------------------------- IAM, logs, metrics


def _star_resources(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Resource", "NotResource") and (value == "*" or (isinstance(value, list) and "*" in value)):
                found.append(path)
            found += _star_resources(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _star_resources(item, f"{path}[{i}]")
    return found


def test_no_star_resources_outside_the_allow_list(tpl: dict[str, Any]) -> None:
    offenders = []
    for name, resource in tpl["Resources"].items():
        if name in STAR_RESOURCE_ALLOWED:
            continue
        for where in _star_resources(resource):
            statement = resource
            for part in re.findall(r"\.(\w+)|\[(\d+)\]", where):
                statement = statement[part[0]] if part[0] else statement[int(part[1])]
            actions = statement.get("Action", [])
            actions = {actions} if isinstance(actions, str) else set(actions)
            if statement.get("Effect") != "Allow" or not actions <= UNSCOPABLE_ACTIONS:
                offenders.append(f"{name}{where}")
    assert not offenders


def test_functions_have_explicit_roles_without_managed_policies(tpl: dict[str, Any]) -> None:
    """SAM generates a role with AWS-managed (Resource "*") policies unless `Role` is given."""
    for name, fn in _resources(tpl, "AWS::Serverless::Function").items():
        props = fn["Properties"]
        assert "Policies" not in props, name
        role = tpl["Resources"][_ref_target(props["Role"])]
        assert role["Type"] == "AWS::IAM::Role", name
        assert not role["Properties"].get("ManagedPolicyArns"), name
    for name, role in _resources(tpl, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), name


def test_alarm_key_is_scoped_to_this_stacks_alarms(tpl: dict[str, Any]) -> None:
    """CloudWatch may use the topic key only for this account's alarms named <stack>-..."""
    (key,) = _resources(tpl, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (statement,) = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-*")
    # So every alarm must keep the name CloudFormation generates (<stack>-<logical id>-<suffix>).
    named = [n for n, a in _resources(tpl, "AWS::CloudWatch::Alarm").items() if "AlarmName" in a["Properties"]]
    assert not named, f"{named} set AlarmName: prefix it with the stack name or widen the key policy"


def test_each_function_logs_to_its_own_log_group(tpl: dict[str, Any]) -> None:
    for name, fn in _resources(tpl, "AWS::Serverless::Function").items():
        group = tpl["Resources"][_ref_target(fn["Properties"]["LoggingConfig"]["LogGroup"])]
        assert group["Type"] == "AWS::Logs::LogGroup", name
        assert group["Properties"]["RetentionInDays"], name
        function_name = fn["Properties"]["FunctionName"]["Fn::Sub"]
        assert group["Properties"]["LogGroupName"]["Fn::Sub"] == f"/aws/lambda/{function_name}", name


def _emitted_metrics() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*/app.py"))
    return set(re.findall(r"""["']([A-Z][A-Za-z]+)["']""", source))


def test_dashboard_and_alarms_use_metrics_the_code_emits(tpl: dict[str, Any]) -> None:
    emitted = _emitted_metrics()
    (dashboard,) = _resources(tpl, "AWS::CloudWatch::Dashboard").values()
    source = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(re.sub(r"\$\{[A-Za-z]+\}(?!\")", "0", source))  # bare numeric substitutions
    custom: set[str] = set()
    for widget in body["widgets"]:
        namespace = None
        for row in widget["properties"]["metrics"]:
            namespace = row[0] if row[0] != "." else namespace
            if namespace == "TraedeExport":
                custom.add(row[1])
    custom |= {
        a["Properties"]["MetricName"]
        for a in _resources(tpl, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "TraedeExport"
    }
    assert custom <= emitted, custom - emitted
    assert {"PollSucceeded", "OrdersDelivered", "OrdersRejected", "MarkFailures"} <= custom


def test_every_alarm_has_a_row_in_the_runbook(tpl: dict[str, Any]) -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text()
    rows = set(re.findall(r"^\| `(\w+Alarm)` \|", runbook, re.MULTILINE))
    assert set(_resources(tpl, "AWS::CloudWatch::Alarm")) == rows


def test_every_resource_is_written_out_for_the_tools_that_cannot_expand_loops(tpl: dict[str, Any]) -> None:
    """checkov skips what is inside Fn::ForEach; samtranslator, moto and traede_local cannot expand it."""
    transforms = tpl["Transform"] if isinstance(tpl["Transform"], list) else [tpl["Transform"]]
    loops = [name for name, resource in tpl["Resources"].items() if not isinstance(resource, dict)]
    why = "see docs/decisions/0010-alarms-without-foreach.md"
    assert "AWS::LanguageExtensions" not in transforms, why
    assert not loops, f"{loops}: {why}"


# ---------------------------------------------------------------- large orders (claim-check)


def test_large_order_threshold_keeps_a_batch_of_ten_within_lambdas_payload(tpl: dict[str, Any]) -> None:
    threshold = int(_global(tpl, "Environment")["Variables"]["LARGE_ORDER_THRESHOLD_BYTES"])
    # Each body may be escaped to twice its size in the event's JSON, plus attributes and metadata.
    assert 10 * (2 * threshold + 2048) < 6_000_000
    assert threshold <= MAX_THRESHOLD_BYTES  # what config.py accepts


def test_large_order_bucket_is_private_tls_only_encrypted_and_expires(tpl: dict[str, Any]) -> None:
    (name,) = _resources(tpl, "AWS::S3::Bucket")
    props = tpl["Resources"][name]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    (policy,) = _resources(tpl, "AWS::S3::BucketPolicy").values()
    assert policy["Properties"]["Bucket"] == {"Ref": name}
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == (
        "Deny",
        "s3:*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert deny["Resource"] == [{"Fn::GetAtt": [name, "Arn"]}, {"Fn::Sub": f"${{{name}.Arn}}/*"}]
    # Objects outlive every copy of their message: the order queue's retention, then the DLQ's.
    retention = sum(q["Properties"]["MessageRetentionPeriod"] for q in _resources(tpl, "AWS::SQS::Queue").values())
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] * 86400 > retention
    assert "VersioningConfiguration" not in props  # objects are re-creatable copies (see the template)


# ---------------------------------------------------------------- cfn-lint


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    if not cfn_lint.exists():
        pytest.skip(f"{cfn_lint} not installed (make setup)")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) pairs of a role's inline policies, resources as CloudFormation wrote them."""
    pairs = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(a, json.dumps(r, sort_keys=True)) for a in actions for r in resources}
    return pairs


def test_a_deleted_large_order_object_reads_as_missing_in_aws_not_as_access_denied() -> None:
    """AWS answers GetObject on a missing key with 403 AccessDenied unless the caller may also
    s3:ListBucket the bucket (S3 API reference, GetObject, "Permissions"); only then is it 404
    NoSuchKey. moto always says NoSuchKey, so the missing-object test passes locally; deployed,
    a deleted or expired object would be read as a transient S3 error: no LargeOrderMissing
    metric or alarm, the lease kept for 2 h, and the pointer retried into the DLQ."""
    template = load_template()
    grants = _grants(template["Resources"]["ForwarderRole"])
    bucket = json.dumps({"Fn::GetAtt": ["LargeOrderBucket", "Arn"]})
    assert ("s3:GetObject", json.dumps({"Fn::Sub": "${LargeOrderBucket.Arn}/*"})) in grants
    assert ("s3:ListBucket", bucket) in grants
