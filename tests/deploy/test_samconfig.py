"""The second-system example is the same in samconfig.toml and the deploy doc, and is a valid config env."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _example_from_samconfig() -> str:
    text = (ROOT / "samconfig.toml").read_text()
    block = text.split("# [erp2.deploy.parameters]", 1)[1]
    lines = ["[erp2.deploy.parameters]"]
    for line in block.splitlines()[1:]:
        if not line.startswith("# "):
            break
        lines.append(line[2:])
    return "\n".join(lines) + "\n"


def test_the_deploy_doc_shows_the_samconfig_example() -> None:
    doc = (ROOT / "docs" / "deploy-and-security.md").read_text()
    section = doc.split("## Several receiving systems from one Traede account", 1)[1]
    shown = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert shown and shown.group(1) == _example_from_samconfig()


def test_the_example_is_its_own_stack_for_its_own_system() -> None:
    example = tomllib.loads(_example_from_samconfig())["erp2"]["deploy"]["parameters"]
    default = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]["deploy"]["parameters"]
    assert example["stack_name"] != default["stack_name"]
    assert example["s3_prefix"] != default["s3_prefix"]
    assert example["capabilities"] == "CAPABILITY_IAM"  # the roles have generated names
    assert re.search(r"\bSystemId=\S+", example["parameter_overrides"])
