"""The operator CLI installs and runs without the local emulators or test tooling."""

from __future__ import annotations

import subprocess
import sys

BLOCK_LOCAL = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"moto", "yaml", "traede_local"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Block())
from traede_ops.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in {"moto", "yaml", "traede_local"}))
sys.exit(code)
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_LOCAL, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_operator_commands_need_no_local_extra() -> None:
    for command in ("status", "replay", "reexport", "redrive", "map"):
        result = run_cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "loaded: []" in result.stdout


def test_run_local_without_the_local_extra_says_what_to_install() -> None:
    result = run_cli("run-local", "--orders", "1")
    assert result.returncode == 1
    assert "pip install 'traede-export[local]'" in " ".join(result.stderr.split())
