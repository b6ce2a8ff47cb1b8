"""Getting DynamoDB Local: a missing jar or Java is a clear failure that says what to do, never a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from traede_local.dynamodb_local import ROOT, DynamoDBLocal, DynamoDBLocalError

SETUP = ROOT / "tools" / "setup-dynamodb-local.sh"


def test_a_missing_jar_names_make_setup(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalError, match=r"DynamoDBLocal\.jar is missing: run `make setup`"):
        DynamoDBLocal(tmp_path).start()


def test_setup_without_java_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with the script's shell tools but no java and no apt-get
    bin_dir.mkdir()
    for tool in ("bash", "sed", "awk", "id", "head", "dirname", "mktemp", "rm", "mkdir", "mv", "tar", "touch"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, bin_dir / tool)
    done = subprocess.run(
        ["bash", str(SETUP), "11.1.0", str(tmp_path / "cache")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "needs Java 17 or later" in done.stderr and "apt-get install -y openjdk-17-jre-headless" in done.stderr
    assert not (tmp_path / "cache").exists()
