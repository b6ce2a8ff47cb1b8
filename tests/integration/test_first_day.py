"""The README's "First day", command by command as it is written there, on the local stack:
`pending --save`, `map` on the saved orders, deploy, `order` on one of them, `status`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from helpers.stack import as_cloudformation_stack
from traede_local.local_stack import REGION, LocalStack, MakeStack
from traede_ops import cli

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = "local-erp"


def first_day_commands() -> list[list[list[str]]]:
    """The `traede-export` commands of each sh block in the README's "First day", as argv lists."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## First day", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        lines = block.replace("\\\n", " ").splitlines()
        blocks.append([shlex.split(line, comments=True)[1:] for line in lines if line.startswith("traede-export ")])
    return blocks


def test_the_readme_shows_two_blocks_of_commands() -> None:
    before, after = first_day_commands()
    assert [argv[0] for argv in before] == ["pending", "map"]
    assert [argv[0] for argv in after] == ["order", "status"]


def test_the_first_day_as_the_readme_writes_it(
    make_stack: MakeStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack: LocalStack = make_stack(orders=10)
    for name, value in {
        "TRAEDE_API_URL": stack.sandbox.url,
        "TRAEDE_SYSTEM_ID": SYSTEM,
        "TRAEDE_ACCESS_TOKEN": stack.credentials["traede"]["access_token"],
        "TRAEDE_APP_KEY": stack.credentials["traede"]["app_key"],
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # `orders/` is relative
    before, after = first_day_commands()

    for argv in before:
        assert cli.main(argv) == cli.EXIT_OK, argv
    saved = sorted(int(p.stem) for p in (tmp_path / "orders").glob("*.json"))
    assert saved == stack.sandbox.pending(SYSTEM) and stack.sandbox.exported(SYSTEM) == set()
    assert "PUT https://erp.example.com/api/purchase-orders/PO-" in capsys.readouterr().out

    name = as_cloudformation_stack(stack)  # deployed
    stack.poll()
    stack.event_source().drain(max_seconds=60)

    one = str(saved[0])
    for argv in after:
        argv = [one if a == "4711" else name if a == "traede-export" else a for a in argv]
        capsys.readouterr()
        assert cli.main([*argv, "--region", REGION, "--json"]) == cli.EXIT_OK, argv
        data = json.loads(capsys.readouterr().out)
        if argv[0] == "order":
            assert data["order_id"] == saved[0] and data["next"] == "delivered and marked"
        else:
            assert data["verdict"] == "healthy"
    capsys.readouterr()
    assert cli.main(["pending", "--stack", name, "--region", REGION, "--json"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["orders"] == []  # all exported
