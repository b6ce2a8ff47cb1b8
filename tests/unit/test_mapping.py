"""The JSONata order mappings: every bundled mapping compiles and runs, the examples' output, the errors."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from traede_export.errors import MappingError
from traede_export.mapping import MAPPINGS_DIR, SAMPLE_ORDER, Bindings, OrderMapping, bundled, load_checked, resolve
from traede_local.events import load_event

ORDER = load_event("order")
# No lines, no supplier, no delivery date, no status or currency: only what every order has.
SPARSE = {
    "id": 4712,
    "order_number": "PO-4712",
    "created_at": "2026-11-21 10:00:00",
    "updated_at": "2026-11-21 10:00:00",
}
BINDINGS = Bindings("erp-1", "traede:erp-1:4711:2026-11-24T15:30:45.000000Z", None)


def erp() -> OrderMapping:
    return OrderMapping.load("erp-purchase-order.jsonata")


def test_the_bundled_folder_ships_both_examples_and_the_sample_order() -> None:
    assert {p.name for p in bundled()} >= {"erp-purchase-order.jsonata", "identity.jsonata"}
    # The cold start's sample is the project's sample order (events/ is not packaged).
    assert json.loads(SAMPLE_ORDER.read_text()) == ORDER


@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.name)
@pytest.mark.parametrize("order", [ORDER, SPARSE], ids=["order.json", "sparse"])
def test_every_bundled_mapping_compiles_and_maps_the_sample_orders(path: Path, order: dict[str, Any]) -> None:
    mapping = OrderMapping.load(path.name)
    mapping.check()  # what the cold start runs
    body = json.loads(mapping.render(order, BINDINGS))
    assert isinstance(body, dict | list) and body


def test_erp_mapping_output_for_the_sample_order() -> None:
    assert erp().apply(ORDER, BINDINGS) == {
        "header": {
            "documentType": "PurchaseOrder",
            "externalDocumentNo": "TEST-EVENT-4711",
            "externalId": "4711",
            "status": "CONFIRMED",
            "orderDate": "2026-11-20",
            "requestedReceiptDate": "2027-02-15",
            "currencyCode": "EUR",
            "totalAmount": 9700,
            "lineCount": 2,
            "source": {
                "system": "traede",
                "systemId": "erp-1",
                "idempotencyKey": BINDINGS.idempotency_key,
                "reexportSince": None,  # null, as the reference engine gives it: not left out
            },
        },
        "supplier": {"vendorNo": "31", "name": "Tessitura Lombarda S.p.A.", "countryCode": "IT"},
        "lines": [
            {
                "lineNo": 10,
                "externalLineId": "90211",
                "itemNo": "AW27-COAT-WOOL-NAVY-M",
                "description": "Wool Car Coat, Navy, M",
                "collection": "AW27",
                "quantity": 120,
                "unitOfMeasure": "PCS",
                "unitCost": 48.5,
                "lineAmount": 5820,
            },
            {
                "lineNo": 20,
                "externalLineId": "90212",
                "itemNo": "AW27-COAT-WOOL-NAVY-L",
                "description": "Wool Car Coat, Navy, L",
                "collection": "AW27",
                "quantity": 80,
                "unitOfMeasure": "PCS",
                "unitCost": 48.5,
                "lineAmount": 3880,
            },
        ],
    }


def test_erp_mapping_gives_a_list_for_a_one_line_order() -> None:
    # The JSONata pitfall: `lines.{...}` on one line is an object, not a list.
    one = {**ORDER, "lines": ORDER["lines"][:1]}
    body = erp().apply(one, BINDINGS)
    assert isinstance(body["lines"], list) and len(body["lines"]) == 1
    assert body["lines"][0]["itemNo"] == "AW27-COAT-WOOL-NAVY-M"
    assert body["header"]["totalAmount"] == 5820 and body["header"]["lineCount"] == 1


def test_erp_mapping_of_an_order_without_lines_or_optional_fields() -> None:
    body = erp().apply(SPARSE, BINDINGS)
    assert body["lines"] == []
    assert "supplier" not in body  # absent fields are left out, never sent as garbage
    assert body["header"] == {
        "documentType": "PurchaseOrder",
        "externalDocumentNo": "PO-4712",
        "externalId": "4712",
        "orderDate": "2026-11-21",
        "totalAmount": 0,
        "lineCount": 0,
        "source": {
            "system": "traede",
            "systemId": "erp-1",
            "idempotencyKey": BINDINGS.idempotency_key,
            "reexportSince": None,  # null, as the reference engine gives it: not left out
        },
    }


def test_erp_mapping_of_a_line_without_product_or_variant() -> None:
    bare = {**SPARSE, "lines": [{"id": 1, "sku": "X-1", "quantity": 3, "unit_cost": 2.5}]}
    (line,) = erp().apply(bare, BINDINGS)["lines"]
    assert line == {
        "lineNo": 10,
        "externalLineId": "1",
        "itemNo": "X-1",
        "description": "",
        "quantity": 3,
        "unitOfMeasure": "PCS",
        "unitCost": 2.5,
        "lineAmount": 7.5,
    }


def test_the_reexport_binding_reaches_the_body() -> None:
    since = "2026-11-01T00:00:00+00:00"
    body = erp().apply(ORDER, Bindings("erp-1", "traede:erp-1:4711:v:reexport:s", since))
    assert body["header"]["source"]["reexportSince"] == since
    assert body["header"]["source"]["idempotencyKey"] == "traede:erp-1:4711:v:reexport:s"


@pytest.mark.parametrize("order", [ORDER, SPARSE], ids=["order.json", "sparse"])
def test_identity_mapping_is_the_order_unchanged(order: dict[str, Any]) -> None:
    identity = OrderMapping.load("identity.jsonata")
    assert identity.apply(order, BINDINGS) == order
    assert json.loads(identity.render(order, BINDINGS)) == order


# ------------------------------------------------------------------------------ loading and errors


def test_names_resolve_in_the_bundled_folder_and_absolute_paths_as_they_are(tmp_path: Path) -> None:
    assert resolve("identity.jsonata") == MAPPINGS_DIR / "identity.jsonata"
    own = tmp_path / "mine.jsonata"
    assert resolve(str(own)) == own
    for escape in ("../config.py", "sub/x.jsonata", ".."):
        with pytest.raises(MappingError, match="file name in the bundled mappings folder"):
            resolve(escape)


def test_empty_means_no_mapping() -> None:
    assert load_checked(None) is None and load_checked("") is None


def test_a_missing_file_names_the_path() -> None:
    with pytest.raises(MappingError, match=r"nope\.jsonata: cannot read it"):
        load_checked("nope.jsonata")


def test_a_syntax_error_names_the_file_and_the_position(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonata"
    bad.write_text('{"header": {"number": order_number}')  # one brace short
    with pytest.raises(MappingError) as caught:
        load_checked(str(bad))
    assert str(bad) in str(caught.value) and "does not compile" in str(caught.value)
    assert "at position" in str(caught.value)


def test_an_unknown_function_fails_the_check_on_the_sample_order(tmp_path: Path) -> None:
    # JSONata compiles it; only running it finds the typo.
    typo = tmp_path / "typo.jsonata"
    typo.write_text('{"number": $uppercse(order_number)}')
    mapping = OrderMapping.load(str(typo))
    with pytest.raises(MappingError) as caught:
        mapping.check()
    message = str(caught.value)
    assert str(typo) in message and "sample-order.json" in message and "uppercse" in message


@pytest.mark.parametrize(
    ("source", "kind"),
    [('"just text"', "a string"), ("id", "a number"), ("missing_field", "nothing"), ("true", "a boolean")],
)
def test_a_result_that_is_not_an_object_or_array_is_an_error(tmp_path: Path, source: str, kind: str) -> None:
    path = tmp_path / "scalar.jsonata"
    path.write_text(source)
    with pytest.raises(MappingError, match=f"produced {kind}"):
        OrderMapping.load(str(path)).apply(ORDER, BINDINGS)


def test_an_evaluation_error_says_why(tmp_path: Path) -> None:
    path = tmp_path / "strict.jsonata"
    path.write_text('supplier ? {"vendor": supplier.id} : $error("order has no supplier")')
    mapping = OrderMapping.load(str(path))
    assert mapping.apply(ORDER, BINDINGS) == {"vendor": 31}
    with pytest.raises(MappingError, match="order has no supplier"):
        mapping.apply(SPARSE, BINDINGS)
    path.write_text('{"total": order_number + 1}')  # a string in arithmetic
    with pytest.raises(MappingError, match="must evaluate to a number"):
        OrderMapping.load(str(path)).apply(ORDER, BINDINGS)


def test_threads_each_get_a_fresh_now(tmp_path: Path) -> None:
    # jsonata-python keeps $now()'s instant on a thread-local instance; without the per-thread
    # expression a worker thread kept the instant of its first evaluation for ever.
    path = tmp_path / "stamp.jsonata"
    path.write_text('{"at": $millis()}')
    mapping = OrderMapping.load(str(path))
    stamps: list[int] = []

    def twice() -> None:
        stamps.append(mapping.apply({}, BINDINGS)["at"])
        time.sleep(0.02)
        stamps.append(mapping.apply({}, BINDINGS)["at"])

    worker = threading.Thread(target=twice)
    worker.start()
    worker.join()
    assert stamps[1] - stamps[0] >= 15
