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
    names = (
        "TARGET_MAPPING",
        "TARGET_URL",
        "TARGET_METHOD",
        "TARGET_STATIC_HEADERS",
        "TARGET_REFERENCE",
        "TRAEDE_SYSTEM_ID",
    )
    for name in names:
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


# ------------------------------------------------------------------------------ the ERP's reference

LOCATION_REFERENCE = '$substringAfter(headers.location, "/purchase-orders/")'


def test_the_reference_is_previewed_from_a_saved_http_answer_and_from_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "answer.http"  # as `curl -i` saves it
    saved.write_bytes(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Location: https://erp.example.com/api/purchase-orders/PO-4711\r\nContent-Length: 16\r\n\r\n"
        b'{"received": 12}'
    )
    as_json = tmp_path / "answer.json"
    as_json.write_text(json.dumps({"status": 201, "headers": {"Location": "/api/purchase-orders/PO-9"}, "body": {}}))
    code, out, _ = run(
        capsys, "map", "--answer", str(saved), "--answer", str(as_json), "--reference", LOCATION_REFERENCE
    )
    assert code == cli.EXIT_OK
    assert f"ERP reference from {saved}: PO-4711" in out and f"ERP reference from {as_json}: PO-9" in out

    monkeypatch.setenv("TARGET_REFERENCE", '"PO-" & $string(body.received)')  # the forwarder's variable
    code, data, _ = run(capsys, "map", ORDER_FILE, "--answer", str(saved), "--json")
    assert code == cli.EXIT_OK and data["requests"][0]["ok"]
    assert data["references"] == [{"answer": str(saved), "reference": "PO-12", "problem": None, "ok": True}]


def test_an_answer_without_a_reference_says_why_and_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bare = tmp_path / "bare.http"
    bare.write_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstored")
    not_an_answer = tmp_path / "order.json"
    not_an_answer.write_text(json.dumps({"id": 1}))
    code, _, err = run(capsys, "map", "--answer", str(bare), "--answer", str(not_an_answer), "--reference", "body.id")
    assert code == cli.EXIT_FAILURE
    assert f"no ERP reference from {bare}: TARGET_REFERENCE yielded nothing" in err
    assert f"no ERP reference from {not_an_answer}: JSON must be" in err


def test_a_reference_that_does_not_compile_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answer = tmp_path / "a.json"
    answer.write_text('{"body": {}}')
    code, _, err = run(capsys, "map", "--answer", str(answer), "--reference", "body.(")
    assert code == cli.EXIT_FAILURE and "TARGET_REFERENCE does not compile" in err
    code, _, err = run(capsys, "map", "--answer", str(answer))
    assert code == cli.EXIT_FAILURE and "--reference" in err
