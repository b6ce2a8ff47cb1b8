"""The test tree's own rules: pytest imports test modules by basename, and helpers live in one place."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "helpers" not in p.parts)


def test_every_test_module_has_a_basename_of_its_own() -> None:
    # Two tiers with one basename fail the whole collection ("import file mismatch").
    twice = [name for name, n in Counter(p.name for p in modules()).items() if n > 1]
    assert not twice, twice


def test_no_test_module_imports_another() -> None:
    # Shared helpers go to tests/helpers (or a conftest fixture), never to another test module.
    found = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.relative_to(TESTS)}: {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert not found, found
