"""What a mapping costs: JSONata's import at cold start, the cold-start check, and the time per order.

`make bench-mapping` (or `python -m traede_bench.mapping_bench [--doc FILE]`). The import is timed
in fresh interpreters (median of 5); the per-order figure is `render` (evaluate and serialise), the
work the forwarder adds to each delivery.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from traede_bench import doc
from traede_export.mapping import SAMPLE_ORDER, Bindings, OrderMapping, bundled
from traede_local.seed import seed_orders

_IMPORT = "import time; t = time.perf_counter(); import jsonata; print(time.perf_counter() - t)"
_COLD = (
    "import time; t = time.perf_counter(); from traede_export.mapping import load_checked; "
    "load_checked('erp-purchase-order.jsonata'); print(time.perf_counter() - t)"
)


def _fresh(code: str, runs: int = 5) -> float:
    times = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(runs)]
    return statistics.median(times)


def _per_order(mapping: OrderMapping, order: dict[str, object], runs: int) -> float:
    bindings = Bindings("bench", "traede:bench:1:v", None)
    mapping.render(order, bindings)  # warm
    started = time.perf_counter()
    for _ in range(runs):
        mapping.render(order, bindings)
    return (time.perf_counter() - started) / runs


def markdown(result: dict[str, Any], runs: int) -> str:
    lines = [
        f"Import of `jsonata` (paid only when a mapping is configured): {result['import_jsonata_ms']} ms. "
        f"Import, compile and check of `erp-purchase-order.jsonata` at cold start: "
        f"{result['cold_start_load_and_check_ms']} ms. Both medians of 5 fresh interpreters.",
        "",
        f"Time to map one order (mean of {runs}), microseconds:",
        "",
        "| mapping | sample order, 2 lines | seeded order, 4 lines |",
        "|---|---:|---:|",
    ]
    for name, per in result["per_order_us"].items():
        lines.append(f"| {name} | {per['sample_order_2_lines']} | {per['seeded_order_4_lines']} |")
    return "\n".join(lines) + "\n"


def measure(runs: int = 2000) -> dict[str, Any]:
    sample = json.loads(SAMPLE_ORDER.read_text(encoding="utf-8"))
    four_lines = next(o for o in seed_orders(50) if len(o["lines"]) == 4)
    result: dict[str, Any] = {
        "import_jsonata_ms": round(_fresh(_IMPORT) * 1000, 1),
        "cold_start_load_and_check_ms": round(_fresh(_COLD) * 1000, 1),
        "per_order_us": {
            path.name: {
                "sample_order_2_lines": round(_per_order(OrderMapping.load(path.name), sample, runs) * 1e6),
                "seeded_order_4_lines": round(_per_order(OrderMapping.load(path.name), four_lines, runs) * 1e6),
            }
            for path in bundled()
        },
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m traede_bench.mapping_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="orders mapped per figure (default 2000)")
    doc.add_option(parser, "mapping")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    print(json.dumps(result, indent=2))
    if args.doc:
        doc.write_block(args.doc, "mapping", markdown(result, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
