"""The standalone `traede-export` masks what it reads itself (review of issue 21): in a process of
its own, where no function registered anything, a URL's query credential or password, and the
Traede credentials `pending` reads, never reach its output, however the output is folded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from traede_local.events import EVENTS
from traede_local.local_stack import LocalStack, MakeStack

ORDER_FILE = str(EVENTS / "order.json")


def traede_export(*argv: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, as an operator runs it (80 columns: rich folds long lines)."""
    names = ("TARGET_URL", "TARGET_MAPPING", "TARGET_METHOD", "TARGET_STATIC_HEADERS", "TRAEDE_SYSTEM_ID")
    base = {k: v for k, v in os.environ.items() if k not in names}
    return subprocess.run(
        [sys.executable, "-m", "traede_ops.cli", *argv],
        env={**base, "COLUMNS": "80", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_map_masks_a_query_credential_of_the_url_it_reads(tmp_path: Path) -> None:
    # The key straddles column 80 of the folded URL line: masking the stream alone missed both halves.
    url = "https://erp.example.com/api/v2/po/{order_number}?code=CANARYsub51" + "a" * 40
    for argv, env in ((["map", ORDER_FILE], {"TARGET_URL": url}), (["map", ORDER_FILE, "--url", url, "--json"], {})):
        done = traede_export(*argv, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "CANARYsub51" not in done.stdout + done.stderr and "?code=***" in done.stdout, done.stdout


def test_map_refuses_a_url_password_in_a_fresh_process(tmp_path: Path) -> None:
    url = "https://erp-user:CANARYsub52@erp.example.com/api/v2/po/{order_number}"
    for argv, env in ((["map", ORDER_FILE], {"TARGET_URL": url}), (["map", ORDER_FILE, "--url", url, "--json"], {})):
        done = traede_export(*argv, env=env, cwd=tmp_path)
        assert done.returncode == 1 and "must not carry credentials" in done.stdout + done.stderr, done
        assert "CANARYsub52" not in done.stdout + done.stderr


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_pending_masks_the_credentials_traede_quotes_back(
    make_stack: MakeStack, tmp_path: Path, json_flag: list[str]
) -> None:
    stack: LocalStack = make_stack(orders=1)
    token, app_key = "CANARYsubtok53-" + "t" * 70, "CANARYsubkey54"  # the token is long enough to be folded
    stack.sandbox.access_token, stack.sandbox.app_key = token, app_key
    stack.sandbox.credentials_expired = True  # 401 "Bearer <token> with app key <key> has expired"
    variables = {
        "TRAEDE_API_URL": stack.sandbox.url,
        "TRAEDE_SYSTEM_ID": "local-erp",
        "TRAEDE_ACCESS_TOKEN": token,
        "TRAEDE_APP_KEY": app_key,
    }
    done = traede_export("pending", *json_flag, env=variables, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "HTTP 401" in output and "***" in output, output
    assert "CANARYsub" not in output
