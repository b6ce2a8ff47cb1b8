"""`map` shows only a request the forwarder would send, and never a URL's password (review of issue 21)."""

from __future__ import annotations

import json

import pytest

from traede_local.events import EVENTS
from traede_ops import cli

PASSWORD = "CANARYmap67"


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_map_refuses_a_url_with_user_info_without_showing_it(
    json_flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://erp-user:{PASSWORD}@erp.example.com/po/{{id}}"  # the forwarder's cold start refuses it
    capsys.readouterr()
    code = cli.main(["map", str(EVENTS / "order.json"), "--url", url, *json_flag])
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    assert code != cli.EXIT_OK


def test_map_reads_target_url_as_the_forwarder_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The forwarder's reader strips the variable (a pasted value often ends in a newline or space);
    # map takes it raw, and shows .../po/4711%20 where the forwarder sends .../po/4711.
    monkeypatch.setenv("TARGET_URL", "https://erp.example.com/po/{id} \n")
    capsys.readouterr()
    assert cli.main(["map", str(EVENTS / "order.json"), "--json"]) == cli.EXIT_OK
    (shown,) = json.loads(capsys.readouterr().out)["requests"]
    assert shown["url"] == "https://erp.example.com/po/4711"
