"""`make bench` in small: the real benchmark end to end (`--quick`), in a process of its own.

A process of its own because the benchmark instruments every botocore client and requests adapter
of its process, which must not leak into the other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from traede_bench.timing import CATEGORIES


@pytest.mark.usefixtures("dynamodb_endpoint")  # DynamoDB Local is installed (the bench starts its own)
def test_quick_bench_writes_results_table_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "traede_bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))

    fwd = results["forwarder"]
    assert fwd["receiver"] == "a process of its own"  # an ERP is another machine
    assert results["forwarder_before"]["receiver"] == "in the benchmark's process"
    assert results["warm_up"]["rounds"] > 0 and set(results["warm_up"]["last"]) == set(results["warm_up"]["first"])
    assert fwd["mark_calls"] == fwd["mark_calls_ideal"] == fwd["orders"] // 10
    assert (fwd["duplicates"], fwd["still_pending"], fwd["failures"]) == (0, 0, 0)
    for phase in fwd["phases"]:
        for batch in phase["per_batch"]:
            # The breakdown accounts for the whole invocation, and each batch waited on the receiver and DynamoDB.
            assert sum(batch["breakdown"].values()) == pytest.approx(batch["seconds"], abs=1e-5)
            assert batch["calls"]["POST /orders"] == batch["records"] == 10
            assert batch["write_units"] > 0
    slow = fwd["phases"][-1]
    assert slow["latency_ms"] == 100
    assert slow["breakdown_mean_seconds"]["receiver"] >= 0.1  # the receiver's latency is seen as waiting on it

    poll = results["poll"]
    assert poll["result"]["enqueued"] == poll["n"] == poll["bodies_with_lines"]
    assert poll["lines_requested"]
    assert sum(poll["breakdown"].values()) == pytest.approx(poll["seconds"], abs=1e-5)
    assert set(poll["breakdown"]) == set(CATEGORIES)
    assert poll["calls"]["sqs.SendMessageBatch"] == poll["n"] // 10
    assert poll["peak_rss_mb"] > poll["rss_before_mb"] > 0

    assert set(results["per_order"]) >= {"forwarder_seconds", "poll_seconds", "forwarder_write_units"}
    assert "## Where time goes" in (tmp_path / "results.md").read_text(encoding="utf-8")
    assert (tmp_path / "where-time-goes.png").read_bytes()[:4] == b"\x89PNG"

    priced = subprocess.run(
        [sys.executable, "-m", "traede_bench.cost", "--results", str(tmp_path / "results.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "measured" in priced.stdout and "Biggest line" in priced.stdout
