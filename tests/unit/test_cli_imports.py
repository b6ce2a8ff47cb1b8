"""The operator CLI installs and runs without the local emulation or test tooling; `traede-local` names its extra."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from traede_ops.moved import new_command

LOCAL_ONLY = {"moto", "yaml", "traede_local"}
OPS_PACKAGE = Path(__file__).parents[2] / "tools" / "traede_ops"

BLOCK = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from importlib import import_module
main = import_module(sys.argv[2]).main
try:
    code = main(sys.argv[3:])
except SystemExit as exit_:
    code = exit_.code
print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
sys.exit(code)
"""


def run_blocked(blocked: set[str], module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`module.main(args)` in a fresh interpreter where importing any of `blocked` fails, as if not installed."""
    argv = [sys.executable, "-c", BLOCK, ",".join(sorted(blocked)), module, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_operator_commands_need_no_local_extra() -> None:
    for command in ("status", "replay", "reexport", "redrive", "map"):
        result = run_blocked(LOCAL_ONLY, "traede_ops.cli", command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "loaded: []" in result.stdout


def test_no_operator_module_imports_the_local_emulation() -> None:
    found = []
    for path in sorted(OPS_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in LOCAL_ONLY]
    assert found == []


def test_traede_local_without_the_local_extra_says_what_to_install() -> None:
    result = run_blocked({"moto", "yaml"}, "traede_local.cli", "run", "--orders", "1")
    assert result.returncode == 1
    assert "pip install 'traede-export[local]'" in " ".join(result.stderr.split())


def test_the_moved_local_commands_map_to_traede_local() -> None:
    assert new_command(["run-local", "--orders", "3", "--json"]) == ["run", "--orders", "3", "--json"]
    assert new_command(["reexport", "--local", "--orders", "8"]) == ["reexport", "--orders", "8"]
    assert new_command(["reexport", "--since", "2026-11-01T00:00:00Z", "--local"]) == [
        "reexport",
        "--since",
        "2026-11-01T00:00:00Z",
    ]
    for unchanged in (["reexport", "--since", "2026-11-01T00:00:00Z"], ["status", "--local"], ["map", "x.json"], []):
        assert new_command(unchanged) is None


def test_run_local_on_the_operator_cli_points_at_traede_local() -> None:
    result = run_blocked(set(), "traede_ops.cli", "run-local", "--help")
    assert result.returncode == 0, result.stderr
    assert "traede-local run" in result.stderr and "usage: traede-local run" in result.stdout
