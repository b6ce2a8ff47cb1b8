"""Figures in the docs come from the commands that measure them; nothing else types one.

Each measuring command rewrites only its own marked block of docs/benchmarks.md; test counts are
typed nowhere; release-to-release comparisons live in CHANGELOG.md; links between docs resolve.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from traede_bench import cold_start, doc, mapping_bench, measure_claims, measure_roundtrips

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
TEXT = "# Title\n\nprose\n\n<!-- figures:a -->\nold a\n<!-- /figures:a -->\n\nmore prose\n"


def test_a_block_is_rewritten_and_nothing_else() -> None:
    once = doc.replace_block(TEXT, "a", "new a\n| 1 | 2 |")
    assert once == TEXT.replace("old a", "new a\n| 1 | 2 |")
    assert doc.replace_block(once, "a", "new a\n| 1 | 2 |") == once  # a second run changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "no markers at all",
        TEXT + TEXT,  # twice
        "<!-- /figures:a -->\n<!-- figures:a -->\n",  # out of order
        "<!-- figures:a -->\nonly the start\n",
    ],
)
def test_a_block_without_its_markers_exactly_once_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="figures:a"):
        doc.replace_block(text, "a", "x")


def test_write_block_stamps_the_figures(tmp_path: Path) -> None:
    path = tmp_path / "bench.md"
    path.write_text(TEXT.replace("figures:a", "figures:bench"), encoding="utf-8")
    doc.write_block(path, "bench", "| figure |")
    written = path.read_text(encoding="utf-8")
    assert "_Written by `make bench` on " in written and "commit" in written and "| figure |" in written
    assert written.startswith("# Title\n\nprose\n") and written.endswith("\n\nmore prose\n")


def test_every_measuring_command_has_its_block_and_the_makefile_writes_it() -> None:
    benchmarks = doc.DOC.read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "FIGURES_DOC := docs/benchmarks.md" in makefile
    for name, command in doc.BLOCKS.items():
        begin, end = doc.markers(name)
        assert benchmarks.count(begin) == benchmarks.count(end) == 1, name
        target = command.removeprefix("make ")
        recipe = re.search(rf"(?m)^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile)
        assert recipe and "--doc $(FIGURES_DOC)" in recipe.group(1), target


def test_the_commands_write_markdown_tables() -> None:
    roundtrips = measure_roundtrips.markdown({"poll 10 new": {"PutItem": 1, "TransactWriteItems": 1}})
    assert "| poll 10 new | 2 | PutItem 1, TransactWriteItems 1 |" in roundtrips
    row = measure_claims.Row("all new", "claim_many 60", 2000, 0.2712, [0.27], 34, 2000, 0)
    assert "| all new | claim_many 60 | 0.271 | 34 |" in measure_claims.markdown([row], 3)
    handler = {"median_ms": 250.0, "min_ms": 240.0, "max_ms": 260.0, "median_cpu_ms": 230.0, "loaded": "boto3"}
    assert "| poller | 250.0 | 240.0 | 260.0 | 230.0 | boto3 | yes |" in cold_start.markdown({"poller": handler}, 15)
    mapping = {
        "import_jsonata_ms": 40.0,
        "cold_start_load_and_check_ms": 45.0,
        "per_order_us": {"identity.jsonata": {"sample_order_2_lines": 90, "seeded_order_4_lines": 120}},
    }
    assert "| identity.jsonata | 90 | 120 |" in mapping_bench.markdown(mapping, 2000)
    assert doc.demote("## Targets\n| a |") == "### Targets\n| a |"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_types_a_test_count(path: Path) -> None:
    typed = re.findall(r"\b\d[\d,]*\s+(?:\w+\s+)?tests\b", path.read_text(encoding="utf-8"))
    assert not typed, f"{path.name} types test counts {typed}: they go stale with every test"


@pytest.mark.parametrize("path", [p for p in DOCS if p.name != "CHANGELOG.md"], ids=lambda p: p.name)
def test_release_comparisons_live_in_the_changelog(path: Path) -> None:
    assert "last release" not in path.read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_docs_resolve(path: Path) -> None:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or a heading of this page
        assert (path.parent / target.split("#", 1)[0]).exists(), f"{path.name} links to missing {target}"
