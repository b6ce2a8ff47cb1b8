"""Every command module of `traede-export` is registered once, and `--help` lists it with its help line."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import traede_ops.commands
from traede_ops.commands import COMMANDS
from traede_ops.parser import build_parser

MODULES = sorted(p.stem for p in Path(traede_ops.commands.__file__).parent.glob("*.py") if p.stem != "__init__")


def test_every_command_module_is_listed_once() -> None:
    listed = [importlib.import_module(f"traede_ops.commands.{m}").COMMAND for m in MODULES]
    assert sorted(c.name for c in COMMANDS) == sorted(c.name for c in listed)
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser(COMMANDS).parse_args(["--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    for command in COMMANDS:
        assert f"{command.name} {' '.join(command.help.split())}" in shown
