"""`replay --dry-run` on files of odd records: each is reported, none sinks the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from traede_export.claim_check import SIZE_ATTRIBUTE, Pointer
from traede_export.models import Attr
from traede_ops import cli


def test_replay_of_a_pointer_record_with_an_odd_extended_payload_size_reports_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`"²".isdigit()` is True but int("²") raises: one odd record must not crash the whole replay."""
    pointer = Pointer("bucket", "orders/1/v/abc.json").body()

    def record(size: str, order_id: str = "1") -> dict[str, Any]:
        attributes = {Attr.ORDER_ID: order_id, Attr.UPDATED_AT: "2026-01-02T03:04:05Z", SIZE_ATTRIBUTE: size}
        return {"body": pointer, "messageAttributes": {k: {"stringValue": v} for k, v in attributes.items()}}

    odd, odd_id, fine = tmp_path / "odd.json", tmp_path / "odd-id.json", tmp_path / "fine.json"
    odd.write_text(json.dumps({"Records": [record("²")]}))
    odd_id.write_text(json.dumps({"Records": [record("300000", order_id="²")]}))
    fine.write_text(json.dumps({"Records": [record("300000")]}))
    code = cli.main(["replay", "--dry-run", "--json", str(odd), str(odd_id), str(fine)])
    report = {Path(f["path"]).name: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert code == 1
    assert SIZE_ATTRIBUTE in report["odd.json"]["error"] and Attr.ORDER_ID in report["odd-id.json"]["error"]
    assert report["fine.json"]["ok"] and report["fine.json"]["orders"] == [1]
