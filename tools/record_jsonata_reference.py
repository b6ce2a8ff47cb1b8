"""Record what JSONata's reference implementation makes of each bundled mapping, for the tests to compare with.

The reference is the JavaScript `jsonata` package, the engine behind the JSONata Exerciser where users
try their mappings. The forwarder runs mappings with jsonata-python; tests/unit/test_mapping_reference.py
checks that it gives the same result, so that the ERP receives the document the user tested.

    python tools/record_jsonata_reference.py

Needs node and npm on PATH (and the npm registry). It installs jsonata@JSONATA_VERSION into a temporary
directory (nothing is left behind), runs every bundled mapping (layers/shared/traede_export/mappings/)
on every case in tests/data/jsonata-reference/orders/ (an order and the bindings the forwarder would
give: `$system_id`, `$idempotency_key`, `$reexport_since`), and writes one file per mapping to
tests/data/jsonata-reference/recorded/. Each result is {"result": ...}, {"undefined": true} or
{"error": CODE}, next to the SHA-256 of the mapping and of each case, so that the test can tell a stale
recording from a real difference.

Re-record after adding or changing a case or a bundled mapping, or to move to a newer jsonata (change
JSONATA_VERSION), then review the diff: a changed result is a changed document for every ERP.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

JSONATA_VERSION = "2.2.2"
ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "layers" / "shared" / "traede_export" / "mappings"
DATA = ROOT / "tests" / "data" / "jsonata-reference"
ORDERS, RECORDED = DATA / "orders", DATA / "recorded"

# Reads {"mappings": [{name, source}], "cases": [{name, order, bindings}]} on stdin. JSON has no
# `undefined`, so a result that is undefined is written as such rather than dropped.
RUNNER = """
const jsonata = require("jsonata");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
(async () => {
  const out = {};
  for (const mapping of input.mappings) {
    const expression = jsonata(mapping.source);
    const results = {};
    for (const c of input.cases) {
      try {
        const result = await expression.evaluate(c.order, c.bindings);
        results[c.name] = result === undefined ? {undefined: true} : {result: result};
      } catch (e) {
        results[c.name] = {error: e.code || String(e)};
      }
    }
    out[mapping.name] = results;
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(ORDERS.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        case = json.loads(text)
        cases.append({"name": path.stem, "order": case["order"], "bindings": case["bindings"], "sha256": sha256(text)})
    return cases


def run_reference(mappings: list[dict[str, str]], cases: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found on PATH: install Node.js (e.g. apt-get install nodejs npm)")
    with tempfile.TemporaryDirectory(prefix="jsonata-reference-") as work:
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", f"jsonata@{JSONATA_VERSION}"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (Path(work) / "run.js").write_text(RUNNER, encoding="utf-8")
        request = {"mappings": mappings, "cases": [{k: c[k] for k in ("name", "order", "bindings")} for c in cases]}
        done = subprocess.run(
            ["node", "run.js"], cwd=work, input=json.dumps(request), capture_output=True, text=True, check=True
        )
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return json.loads(done.stdout), node


def main() -> int:
    cases = load_cases()
    if not cases:
        sys.exit(f"no cases in {ORDERS}")
    mappings = [
        {"name": path.name, "source": path.read_text(encoding="utf-8")} for path in sorted(MAPPINGS.glob("*.jsonata"))
    ]
    results, node = run_reference(mappings, cases)
    RECORDED.mkdir(parents=True, exist_ok=True)
    for stale in RECORDED.glob("*.json"):  # a mapping that is no longer bundled
        stale.unlink()
    for mapping in mappings:
        recorded = {
            "recorded_by": "tools/record_jsonata_reference.py",
            "jsonata": JSONATA_VERSION,
            "node": node,
            "mapping": mapping["name"],
            "mapping_sha256": sha256(mapping["source"]),
            "cases": {c["name"]: {"case_sha256": c["sha256"], **results[mapping["name"]][c["name"]]} for c in cases},
        }
        target = RECORDED / (Path(mapping["name"]).stem + ".json")
        target.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{target.relative_to(ROOT)}: {len(cases)} case(s) with jsonata {JSONATA_VERSION} on node {node}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
