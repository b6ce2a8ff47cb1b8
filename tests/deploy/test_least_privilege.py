"""Every role in the translated template grants exactly the rows of `least_privilege.ALLOWED`.

Static (no moto): template.yaml through the SAM translator, then each role's statements
flattened to (action, resource) pairs and compared with the table. A statement that grants more
than the code uses (another action, a wildcard, another resource, a managed policy) fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from deploy_stack import translate
from least_privilege import ALLOWED, FUNCTION_ROLES, SECRET_PARAMETERS

PARAMETERS = {"SystemId": "sys-a", "TargetUrl": "https://erp.example.com/orders"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return dict(translate(PARAMETERS)[0])


def _resource(value: Any) -> list[str]:
    """A statement's resource as logical ids ("*" stays "*"); a condition's branches both count."""
    if value == "*":
        return ["*"]
    if isinstance(value, list):
        return [r for v in value for r in _resource(v)]
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
        return [value["Fn::GetAtt"][0]]
    if isinstance(value, dict) and "Ref" in value:
        return [SECRET_PARAMETERS.get(value["Ref"], value["Ref"])]
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        found = re.fullmatch(r"\$\{(\w+)\.Arn\}(/\*)?", value["Fn::Sub"])
        if found:
            return [found.group(1) + (found.group(2) or "")]
    if isinstance(value, dict) and "Fn::If" in value:
        return _resource(value["Fn::If"][1]) + _resource(value["Fn::If"][2])
    return [f"unrecognised resource {value!r}: name a resource of this stack"]


def granted(role: dict[str, Any]) -> set[tuple[str, str]]:
    pairs = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", statement
            assert "NotAction" not in statement and "NotResource" not in statement, statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                for resource in _resource(statement["Resource"]):
                    pairs.add((action, resource))
    return pairs


def test_roles_are_exactly_the_declared_ones(translated: dict[str, Any]) -> None:
    roles = {k for k, v in translated["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert roles == set(ALLOWED), "a role SAM generated, or one the table does not declare"
    policy_types = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    others = [k for k, v in translated["Resources"].items() if v["Type"] in policy_types]
    assert not others


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_role_grants_exactly_what_the_code_uses(translated: dict[str, Any], role: str) -> None:
    resource = translated["Resources"][role]
    assert not resource["Properties"].get("ManagedPolicyArns"), "AWS-managed policies grant on Resource *"
    grants = granted(resource)
    declared = set(ALLOWED[role])
    assert not grants - declared, f"{role} grants more than the code uses: {sorted(grants - declared)}"
    assert not declared - grants, f"{role} lacks what the code uses: {sorted(declared - grants)}"


def test_wildcard_resources_only_where_aws_has_no_scoping() -> None:
    for role, rows in ALLOWED.items():
        for action, resource in rows:
            if resource == "*":
                assert action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"), (role, action)
            assert "*" not in action, (role, action)


def test_each_function_runs_with_its_own_role(translated: dict[str, Any]) -> None:
    for function, role in FUNCTION_ROLES.items():
        props = translated["Resources"][function]["Properties"]
        assert props["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        trust = translated["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    schedules = [v for v in translated["Resources"].values() if v["Type"] == "AWS::Scheduler::Schedule"]
    assert [s["Properties"]["Target"]["RoleArn"] for s in schedules] == [{"Fn::GetAtt": ["PollScheduleRole", "Arn"]}]
