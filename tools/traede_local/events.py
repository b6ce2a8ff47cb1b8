"""The sample events in `events/`: one loader for the tests, the local run and `sam local invoke -e`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    """`load_event("scheduled")` reads `events/scheduled.json`."""
    with (EVENTS / f"{name}.json").open(encoding="utf-8") as handle:
        return dict(json.load(handle))
