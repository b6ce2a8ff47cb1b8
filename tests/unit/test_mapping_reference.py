"""Our JSONata engine gives the reference implementation's result for every bundled mapping.

Users try a mapping in the JSONata Exerciser (the JavaScript reference); the forwarder runs it with
jsonata-python. tests/data/jsonata-reference/recorded/ holds the reference's results on the cases in
tests/data/jsonata-reference/orders/, recorded by tools/record_jsonata_reference.py. The comparison
is of the JSON the ERP receives: null is not absent, "10" is not 10 and true is not 1; numbers compare
as numbers (JSON has one number type, so 14.0 is 14).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from traede_export.errors import MappingError
from traede_export.mapping import Bindings, OrderMapping, bundled

DATA = Path(__file__).parents[1] / "data" / "jsonata-reference"
RERECORD = "re-record with `python tools/record_jsonata_reference.py` (needs node and npm) and review the diff"


def recorded(mapping: Path) -> dict[str, Any]:
    path = DATA / "recorded" / f"{mapping.stem}.json"
    assert path.exists(), f"no reference results for {mapping.name}: {RERECORD}"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()


CASES = sorted((DATA / "orders").glob("*.json"))


def test_there_are_cases_for_the_shapes_orders_come_in() -> None:
    assert len(CASES) >= 10
    bindings = [json.loads(p.read_text(encoding="utf-8"))["bindings"] for p in CASES]
    assert any(b["reexport_since"] is None for b in bindings) and any(b["reexport_since"] for b in bindings)


@pytest.mark.parametrize("mapping", bundled(), ids=lambda p: p.name)
def test_the_recording_is_of_todays_mapping_and_cases(mapping: Path) -> None:
    data = recorded(mapping)
    assert data["mapping_sha256"] == sha256(mapping), f"{mapping.name} changed since the recording: {RERECORD}"
    assert set(data["cases"]) == {p.stem for p in CASES}, RERECORD
    for path in CASES:
        assert data["cases"][path.stem]["case_sha256"] == sha256(path), f"{path.name} changed: {RERECORD}"


def canonical(value: Any) -> str:
    """The JSON text with sorted keys and whole numbers written as integers."""

    def numbers(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: numbers(x) for k, x in v.items()}
        return [numbers(x) for x in v] if isinstance(v, list) else v

    return json.dumps(numbers(value), sort_keys=True, ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("mapping", bundled(), ids=lambda p: p.name)
def test_our_engine_gives_the_reference_result(mapping: Path, case: Path) -> None:
    given = json.loads(case.read_text(encoding="utf-8"))
    expected = recorded(mapping)["cases"][case.stem]
    compiled = OrderMapping.load(mapping.name)
    bindings = Bindings(**given["bindings"])
    if "error" in expected:
        with pytest.raises(MappingError, match=expected["error"]):
            compiled.render(given["order"], bindings)
    elif expected.get("undefined"):
        with pytest.raises(MappingError, match="produced nothing"):
            compiled.render(given["order"], bindings)
    else:
        body = json.loads(compiled.render(given["order"], bindings))  # the bytes the forwarder sends
        assert body == expected["result"]
        assert canonical(body) == canonical(expected["result"])  # `==` alone takes True for 1 and 1 for 1.0
