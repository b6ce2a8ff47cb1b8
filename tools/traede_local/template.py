"""Reads `template.yaml` so the local run wires functions exactly as SAM deploys them.

Only the intrinsics the template uses are resolved: Ref, Fn::Sub, Fn::GetAtt, Fn::If,
Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Join, Fn::Select, Fn::Split and Condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short tags into their long form."""


def _construct(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(yaml.load(handle, Loader=CfnLoader))


@dataclass
class Resolver:
    """Resolves intrinsics against parameter values and the local resources' references."""

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> what Ref returns
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)  # (logical id, attribute) -> value

    def __post_init__(self) -> None:
        defaults = {name: str(spec.get("Default", "")) for name, spec in self.template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **self.parameters}
        self.pseudo = {
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::StackName": "traede-export-local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs.get(name, f"local-{name}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(i) for i in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            name = "ref" if key == "Ref" else key.removeprefix("Fn::")
            handler = getattr(self, f"_fn_{name}", None)
            if handler is not None:
                return handler(value)
        return {k: r for k, r in ((k, self.resolve(v)) for k, v in node.items()) if r is not NO_VALUE}

    def _fn_ref(self, value: str) -> Any:
        return self.ref(value)

    def _fn_Condition(self, value: str) -> bool:
        return self.condition(value)

    def _fn_GetAtt(self, value: list[str]) -> str:
        logical, attribute = value[0], value[1]
        return self.attrs.get((logical, attribute), f"local-{logical}-{attribute}")

    def _fn_Sub(self, value: Any) -> str:
        text, local = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                return str(self._fn_GetAtt(name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _fn_If(self, value: list[Any]) -> Any:
        return self.resolve(value[1] if self.condition(value[0]) else value[2])

    def _fn_Equals(self, value: list[Any]) -> bool:
        left, right = (self.resolve(v) for v in value)
        return str(left) == str(right)

    def _fn_Not(self, value: list[Any]) -> bool:
        return not self.resolve(value[0])

    def _fn_And(self, value: list[Any]) -> bool:
        return all(self.resolve(v) for v in value)

    def _fn_Or(self, value: list[Any]) -> bool:
        return any(self.resolve(v) for v in value)

    def _fn_Join(self, value: list[Any]) -> str:
        return str(value[0]).join(str(v) for v in self.resolve(value[1]))

    def _fn_Select(self, value: list[Any]) -> Any:
        return self.resolve(value[1])[int(self.resolve(value[0]))]

    def _fn_Split(self, value: list[Any]) -> list[str]:
        return str(self.resolve(value[1])).split(str(value[0]))


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    function: str
    environment: dict[str, str]
    timeout: int
    events: dict[str, Any]


def functions(template: dict[str, Any], resolver: Resolver) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, with Globals merged in as SAM does."""
    globals_ = template.get("Globals", {}).get("Function", {})
    specs = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**globals_, **resource.get("Properties", {})}
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **resource["Properties"].get("Environment", {}).get("Variables", {}),
        }
        module, function = str(props["Handler"]).rsplit(".", 1)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=ROOT / str(props["CodeUri"]),
            module=module,
            function=function,
            environment={k: str(v) for k, v in resolver.resolve(env).items()},
            timeout=int(resolver.resolve(props.get("Timeout", 3))),
            events=resolver.resolve(props.get("Events", {})),
        )
    return specs


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}
