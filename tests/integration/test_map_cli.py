"""`traede-export map` (the preview, no AWS) and `traede-local run --mapping`, in-process through `main`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from traede_export.mapping import MAPPINGS_DIR
from traede_local import cli as local_cli
from traede_local.events import EVENTS
from traede_ops import cli

ORDER_FILE = str(EVENTS / "order.json")
SQS_FILE = str(EVENTS / "sqs-order.json")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # rich wraps long error lines
    return code, json.loads(captured.out) if "--json" in argv else captured.out, err


@pytest.fixture(autouse=True)
def _no_forwarder_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TARGET_MAPPING", "TARGET_URL", "TARGET_METHOD", "TARGET_STATIC_HEADERS", "TRAEDE_SYSTEM_ID"):
        monkeypatch.delenv(name, raising=False)


def test_preview_with_the_erp_mapping_a_put_url_and_headers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "map",
        ORDER_FILE,
        SQS_FILE,
        "--mapping",
        "erp-purchase-order.jsonata",
        "--url",
        "https://erp.example.com/purchase-orders/{order_number}",
        "--method",
        "put",
        "--headers",
        '{"X-Erp-Company": "CRONUS"}',
        "--system-id",
        "erp-1",
        "--json",
    )
    assert code == cli.EXIT_OK and out["ok"]
    assert out["mapping"] == str(MAPPINGS_DIR / "erp-purchase-order.jsonata")
    first, second = out["requests"]
    assert first["file"] == ORDER_FILE and second["file"] == SQS_FILE
    assert first["method"] == "PUT" and first["url"] == "https://erp.example.com/purchase-orders/TEST-EVENT-4711"
    key = "traede:erp-1:4711:2026-11-24T15:30:45.000000Z:test-event"  # the samples are test events: their own key
    assert first["headers"] == {"Content-Type": "application/json", "X-Erp-Company": "CRONUS", "Idempotency-Key": key}
    assert first["body"]["header"]["externalDocumentNo"] == "TEST-EVENT-4711"
    assert [line["lineNo"] for line in first["body"]["lines"]] == [10, 20]
    assert second["body"] == first["body"]


def test_preview_without_a_mapping_shows_traedes_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "map", ORDER_FILE, "--json")
    assert code == cli.EXIT_OK
    (request,) = out["requests"]
    assert request["method"] == "POST" and request["url"] is None
    assert request["body"] == json.loads(Path(ORDER_FILE).read_text())


def test_preview_reads_the_forwarders_variables(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    monkeypatch.setenv("TARGET_MAPPING", "identity.jsonata")
    monkeypatch.setenv("TARGET_URL", "https://erp.example.com/po/{id}")
    monkeypatch.setenv("TARGET_METHOD", "PUT")
    code, out, _ = run(capsys, "map", ORDER_FILE, "--json")
    assert code == cli.EXIT_OK and out["mapping"].endswith("identity.jsonata")
    assert (out["requests"][0]["method"], out["requests"][0]["url"]) == ("PUT", "https://erp.example.com/po/4711")


def test_a_failing_order_exits_1_with_its_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders.json"
    no_number = {"id": 9, "updated_at": "2026-11-01 10:00:00"}
    orders.write_text(json.dumps([json.loads(Path(ORDER_FILE).read_text()), no_number]))
    code, out, err = run(capsys, "map", str(orders), "--url", "https://erp/po/{order_number}")
    assert code == cli.EXIT_FAILURE
    assert "order 9" in err and "has no 'order_number'" in err
    assert "PUT" not in out and "POST https://erp/po/TEST-EVENT-4711" in out
    assert "1 request(s) built, 1 failed" in out


def test_a_mapping_file_by_path_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "mine.jsonata"
    mapping.write_text('{"po": order_number, "lines": [lines.sku]}')
    code, out, _ = run(capsys, "map", ORDER_FILE, "--mapping", str(mapping), "--json")
    assert code == cli.EXIT_OK
    assert out["requests"][0]["body"] == {
        "po": "TEST-EVENT-4711",
        "lines": ["AW27-COAT-WOOL-NAVY-M", "AW27-COAT-WOOL-NAVY-L"],
    }

    mapping.write_text('$error("not for this ERP")')
    code, out, _ = run(capsys, "map", ORDER_FILE, "--mapping", str(mapping), "--json")
    assert code == cli.EXIT_FAILURE and not out["ok"]
    assert "not for this ERP" in out["requests"][0]["error"]

    mapping.write_text('{"po": ')
    code, _, err = run(capsys, "map", ORDER_FILE, "--mapping", str(mapping))
    assert code == cli.EXIT_FAILURE and str(mapping) in err and "does not compile" in err


@pytest.mark.parametrize(
    ("option", "why"),
    [
        (["--method", "PATCH"], "method must be one of POST, PUT"),
        (["--headers", '{"Content-Type": "text/plain"}'], "may not set Content-Type"),
        (["--url", "https://erp/po/{id"], "unmatched"),
    ],
)
def test_bad_settings_are_refused(option: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "map", ORDER_FILE, *option)
    assert code == cli.EXIT_FAILURE and why in err


def test_run_local_with_a_mapping(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, os.environ[name])  # the local run starts its own moto; restore ours after
    capsys.readouterr()
    code = local_cli.main(
        ["run", "--orders", "6", "--store-dir", str(tmp_path), "--mapping", "erp-purchase-order.jsonata", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_OK and out["delivered"] == out["marked"] == out["enqueued"] > 0
    stored = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(stored) == out["delivered"]
    assert all(body["header"]["documentType"] == "PurchaseOrder" for body in stored)
