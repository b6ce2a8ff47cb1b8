"""The whole export, explored: the real poller and forwarder on the in-memory ledger, every
interleaving and fault that Hypothesis draws (see tests/helpers/simulation.py).

`make simulate` runs a long exploration with the `simulate` profile; CI runs the `ci` profile.
"""

from __future__ import annotations

import os

from helpers.simulation import ExportMachine
from hypothesis import HealthCheck, settings

from traede_export.ledger_store import Store
from traede_local.memory_store import MemoryStore

settings.register_profile(
    "ci", max_examples=300, stateful_step_count=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
settings.register_profile(
    "simulate", max_examples=20_000, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


class MemoryExport(ExportMachine):
    def make_store(self) -> Store:
        return MemoryStore()


MemoryExport.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TestMemoryExport = MemoryExport.TestCase
