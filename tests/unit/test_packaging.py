"""`pip install .` (no extras, not editable: what an operator does) installs every package and the bundled mappings.

setuptools installs only the packages pyproject.toml lists, and no data files unless told: a package or
a mapping missing there works in the editable install of a checkout and fails in an operator's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from traede_export.mapping import MAPPINGS_DIR

ROOT = Path(__file__).parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_directory_is_installed() -> None:
    on_disk = set()
    for name, directory in SETUPTOOLS["package-dir"].items():
        for init in (ROOT / directory).rglob("__init__.py"):
            on_disk.add(".".join([name, *init.parent.relative_to(ROOT / directory).parts]))
    assert set(SETUPTOOLS["packages"]) == on_disk


def test_the_bundled_mappings_and_the_sample_order_are_installed() -> None:
    package = ROOT / SETUPTOOLS["package-dir"]["traede_export"]
    patterns = SETUPTOOLS.get("package-data", {}).get("traede_export", [])
    installed = {path for pattern in patterns for path in package.glob(pattern)}
    bundled = {path for path in MAPPINGS_DIR.iterdir() if path.is_file()}
    assert bundled and bundled <= installed, sorted(p.name for p in bundled - installed)
