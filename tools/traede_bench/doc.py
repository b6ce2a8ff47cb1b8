"""Writes a measuring command's figures into its own marked block of docs/benchmarks.md.

No figure in that file is typed by hand: each block lies between `<!-- figures:NAME -->` and
`<!-- /figures:NAME -->`, and only the command named in `BLOCKS` rewrites it (`--doc PATH`, which
the Makefile passes). Everything outside the markers is left as it is. A stamp line says when,
on which commit and on what machine the figures were measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
# block name -> the command that writes it
BLOCKS = {
    "bench": "make bench",
    "cost": "make cost",
    "roundtrips": "make measure-roundtrips",
    "claims": "make measure-claims",
    "cold-start": "make cold-start",
    "mapping": "make bench-mapping",
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- figures:{name} -->", f"<!-- /figures:{name} -->"


def _commit() -> str:
    try:
        root = DOC.parents[1]
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # The blocks written so far are changes too, but not to what was measured.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", f":!{DOC.relative_to(root)}"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {sha}" + (" with uncommitted changes" if dirty else "")


def stamp(name: str) -> str:
    """Who wrote the block, when, on what: the figures mean little without the machine and its load."""
    return (
        f"_Written by `{BLOCKS[name]}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_commit()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}._"
    )


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the block `name` holding `body`; fails unless both markers appear exactly once, in order."""
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"the document needs {begin} ... {end} exactly once, in that order")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body.strip()}\n{end}{tail}"


def write_block(doc: Path, name: str, body: str, stamp_line: str | None = None) -> None:
    """Rewrites the block `name` of `doc` with the stamp and `body`."""
    text = doc.read_text(encoding="utf-8")
    line = stamp(name) if stamp_line is None else stamp_line
    doc.write_text(replace_block(text, name, f"{line}\n\n{body.strip()}"), encoding="utf-8")


def demote(markdown: str, levels: int = 1) -> str:
    """Headings one level down, so a command's own `## ...` sit under the doc's section."""
    return "\n".join("#" * levels + line if line.startswith("#") else line for line in markdown.splitlines())


def add_option(parser: argparse.ArgumentParser, name: str) -> None:
    """`--doc FILE`: also write the figures into the block `name` of FILE (the Makefile passes the doc)."""
    parser.add_argument("--doc", type=Path, help=f"also write the figures into this doc's `{name}` block")
