"""`traede-local`, the local emulation's entry point, in-process; and `traede-export run-local` still reaching it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from traede_local import cli
from traede_ops.output import EXIT_OK


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = cli.main(list(argv))
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(autouse=True)
def _restore_aws_environment(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, os.environ[name])  # the local run starts its own moto; restore ours after


def test_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "run", "--orders", "6", "--store-dir", str(tmp_path), "--json")
    assert code == EXIT_OK and out["delivered"] == out["enqueued"] > 0 and out["failed"] == 0
    assert len(list(tmp_path.glob("*.json"))) == out["delivered"]


def test_reexport(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "reexport", "--orders", "8", "--json")
    assert code == EXIT_OK, out
    first, again = out["first_export"], out["reexport"]
    assert first["enqueued"] == first["marked"] > 0
    assert again["enqueued"] == again["redelivered"] == first["enqueued"] == out["queued"]
    assert out["dead_letters"] == 0


def test_the_operator_clis_run_local_runs_traede_local_and_says_so(tmp_path: Path) -> None:
    argv = ["run-local", "--orders", "4", "--store-dir", str(tmp_path), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "traede_ops.cli", *argv], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == EXIT_OK, done.stderr
    out = json.loads(done.stdout)
    assert out["delivered"] == out["enqueued"] > 0
    assert "traede-local run" in done.stderr
