"""The whole export, explored: the real poller and forwarder on the in-memory ledger, every
interleaving and fault that Hypothesis draws (see tests/helpers/simulation.py).

CI runs the `ci` profile (a fixed set of examples); `make simulate` a long, random exploration
(the `simulate` profile, EXAMPLES and SEED from the environment) and prints what it explored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, settings

from helpers.simulation import ExportMachine
from traede_export.ledger_store import Store
from traede_local.memory_store import MemoryStore

settings.register_profile(
    "ci", max_examples=300, stateful_step_count=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile("mutants", settings.get_profile("ci"), phases=[Phase.explicit, Phase.generate])
settings.register_profile(
    "simulate", max_examples=int(os.environ.get("SIM_EXAMPLES", "20000")), stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


class MemoryExport(ExportMachine):
    def make_store(self) -> Store:
        return MemoryStore()


MemoryExport.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TestMemoryExport = MemoryExport.TestCase


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    ExportMachine.stats.clear()
    yield
    if os.environ.get("HYPOTHESIS_PROFILE") == "simulate":
        print("\nexplored:", json.dumps(dict(sorted(ExportMachine.stats.items())), indent=2))
