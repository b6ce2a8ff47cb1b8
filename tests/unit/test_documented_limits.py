"""The client's limits are Traede's documented ones, as the sandbox states them from docs/traede-api.md.

The sandbox does not import the client's constants: a wrong limit in the client would otherwise
agree with the sandbox and pass every other test.
"""

from __future__ import annotations

import re
from pathlib import Path

from traede_export.config import INCLUDABLE, MAX_PAGE_SIZE
from traede_export.models import MAX_MARK_BATCH
from traede_local import export_query, sandbox

DOC = (Path(__file__).parents[2] / "docs" / "traede-api.md").read_text()


def test_the_clients_limits_are_the_sandboxs() -> None:
    assert MAX_PAGE_SIZE == export_query.MAX_LIMIT
    assert MAX_MARK_BATCH == sandbox.MAX_MARK_ITEMS
    assert INCLUDABLE == export_query.INCLUDES


def test_the_sandboxs_limits_are_the_documented_ones() -> None:
    assert f"default {export_query.DEFAULT_LIMIT}, at most {export_query.MAX_LIMIT}" in DOC
    assert f"At most {sandbox.MAX_MARK_ITEMS} items per call" in DOC
    includable = DOC.split("**Includable resources**", 1)[1].split("- **Answer**", 1)[0]
    assert set(re.findall(r"`([A-Za-z.]+)`", includable)) == export_query.INCLUDES
