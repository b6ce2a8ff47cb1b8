"""Seed small, plausible slips into the export's rules, one at a time, and see which tests catch them.

Each slip is a text edit a maintainer could make: a clause dropped from a guard, `<=` turned into
`<`, a take-back removed, a predicate that always answers the same. For each, the unit tier runs
first (seconds); `--tier all` also runs the rest of the suite on what the unit tier let through.
The tree is restored after each slip, whatever happens.

    python tools/mutants.py [--tier unit|all] [--only NAME]   (make mutants)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = "layers/shared/traede_export"
SIMULATION = "tests/unit/test_export_simulation.py"


@dataclass(frozen=True)
class Slip:
    name: str
    path: str
    old: str
    new: str


SLIPS = [
    # The ledger's guards (protocol.py) and writes (ledger.py).
    Slip(
        "claim: a newer version waits", f"{LAYER}/protocol.py", "enqueued_version < :v OR", "enqueued_version <= :v OR"
    ),
    Slip("claim: an expired lease holds", f"{LAYER}/protocol.py", " OR lease_until < :now", ""),
    Slip("claim: no own-token clause", f"{LAYER}/protocol.py", '"\n        " OR claim_token = :token)"', ')"'),
    Slip(
        "claim: refusals forgotten",
        f"{LAYER}/protocol.py",
        "rejected_version <> :v",
        "rejected_version = rejected_version",
    ),
    Slip(
        "lease: joined by anyone",
        f"{LAYER}/protocol.py",
        "delivering_until < :now OR delivering_token = :token",
        "delivering_until < :now OR attribute_exists(delivering_token)",
    ),
    Slip("lease: no own-token clause", f"{LAYER}/protocol.py", " OR delivering_token = :token)", ")"),
    Slip(
        "lease: a delivered version POSTed again",
        f"{LAYER}/protocol.py",
        ' AND (attribute_not_exists(delivered_version) OR delivered_version <> :v OR delivered_ms < :since)"',
        '"',
    ),
    Slip(
        "lease: a re-export ignores its instant",
        f"{LAYER}/protocol.py",
        "OR delivered_version <> :v OR delivered_ms < :since)",
        "OR delivered_version <> :v OR attribute_exists(delivered_ms))",
    ),
    Slip(
        "record: over another's live lease",
        f"{LAYER}/protocol.py",
        'OR delivering_token = :token OR delivering_until < :now)"\nSENT',
        'OR attribute_exists(delivering_token))"\nSENT',
    ),
    Slip(
        "hold: anyone's claim",
        f"{LAYER}/protocol.py",
        'run_id = :run_id",\n    sets=("lease_until",),\n    why="a claim\'s first lease',
        'attribute_exists(run_id)",\n    sets=("lease_until",),\n    why="a claim\'s first lease',
    ),
    Slip(
        "lease: sent versions forgotten",
        f"{LAYER}/protocol.py",
        '("enqueued_version", "sent_version", "delivered_version", "marked_version")',
        '("enqueued_version", "delivered_version", "marked_version")',
    ),
    Slip(
        "record: same version refused",
        f"{LAYER}/protocol.py",
        '_NOT_DELIVERED_NEWER = _at_most_v("delivered_version")',
        '_NOT_DELIVERED_NEWER = "(attribute_not_exists(delivered_version) OR delivered_version < :v)"',
    ),
    Slip(
        "mark: a newer claim ignored",
        f"{LAYER}/protocol.py",
        '    " AND ".join(_at_most_v(a) for a in ("enqueued_version", "sent_version", "delivered_version"))',
        '    " AND ".join(_at_most_v(a) for a in ("sent_version", "delivered_version"))',
    ),
    Slip(
        "mark: seen token ignored",
        f"{LAYER}/protocol.py",
        "mark_token IN (:seen, :token)",
        "mark_token = :token OR attribute_exists(mark_token)",
    ),
    Slip("mark: own second try refused", f"{LAYER}/protocol.py", "mark_token IN (:seen, :token)", "mark_token = :seen"),
    Slip(
        "undo: anyone's record",
        f"{LAYER}/protocol.py",
        'guard="marked_version = :v AND mark_token = :token"',
        'guard="marked_version = :v AND attribute_exists(mark_token)"',
    ),
    Slip(
        "release: anyone's lease",
        f"{LAYER}/protocol.py",
        'run_id = :run_id",\n    sets=("lease_until",),\n    why="it could not',
        'attribute_exists(run_id)",\n    sets=("lease_until",),\n    why="it could not',
    ),
    Slip(
        "end delivery: anyone's lease",
        f"{LAYER}/protocol.py",
        'guard="delivering_token = :token",\n    sets=(),',
        'guard="attribute_exists(delivering_token)",\n    sets=(),',
    ),
    Slip(
        "forget: any version",
        f"{LAYER}/protocol.py",
        'guard="rejected_version = :v"',
        'guard="attribute_exists(rejected_version)"',
    ),
    Slip(
        "reference: an older one kept",
        f"{LAYER}/protocol.py",
        "    removes=(*DELIVERY_LEASE, *REJECTION, REFERENCE),",
        "    removes=(*DELIVERY_LEASE, *REJECTION),",
    ),
    Slip(
        "reference: a later mark forgets it",
        f"{LAYER}/mark.py",
        "key, reference = e.delivered_key, e.delivered_reference or None",
        "key, reference = e.delivered_key, None",
    ),
    Slip(
        "read-back: never",
        f"{LAYER}/ledger.py",
        "            if entry is not None and took_effect(entry):",
        "            if False:",
    ),
    # The plan.
    Slip(
        "plan: equal counts as newer",
        f"{LAYER}/protocol.py",
        "    if entry is not None and entry.newest() > newest:",
        "    if entry is not None and entry.newest() >= newest:",
    ),
    Slip(
        "plan: claims ignored",
        f"{LAYER}/protocol.py",
        "    if entry is not None and entry.newest() > newest:",
        "    if entry is not None and entry.arrived() > newest:",
    ),
    Slip(
        "plan: re-export never posts",
        f"{LAYER}/protocol.py",
        "    return entry.delivered_ms < epoch_ms(copy.reexport_since)",
        "    return False",
    ),
    Slip(
        "plan: re-marks after a fetch lost",
        f"{LAYER}/protocol.py",
        "    fetched = entry.enqueued_ms if entry.run_id in _runs(copies) else 0",
        "    fetched = 0",
    ),
    Slip(
        "plan: never went backwards",
        f"{LAYER}/protocol.py",
        "    return entry.run_id in _runs(copies) and",
        "    return False and entry.run_id in _runs(copies) and",
    ),
    # The forwarder.
    Slip(
        "forwarder: never stale",
        f"{LAYER}/deliver.py",
        "return Attempt(result, stale=not recorded)",
        "return Attempt(result, stale=False)",
    ),
    Slip(
        "forwarder: failed marks stay recorded",
        f"{LAYER}/mark.py",
        "        unmarked = [w for w in unmarked if w.head.ref.order_id in writes.tried]",
        "        unmarked = []",
    ),
    Slip(
        "forwarder: overtaken deliveries unrecorded",
        f"{LAYER}/deliver.py",
        "        overtaken = [d for d, ok in zip(deliveries, found[:n], strict=True) if ok is False]",
        "        overtaken: list[tuple[OrderRef, str]] = []",
    ),
    Slip(
        "forwarder: leases kept on failure",
        f"{LAYER}/deliver.py",
        "            if unsent:\n                self._ledger.end_deliveries(unsent",
        "            if False:\n                self._ledger.end_deliveries(unsent",
    ),
    Slip(
        "forwarder: a failed POST frees its lease",
        f"{LAYER}/deliver.py",
        "        elif result.outcome is Outcome.REJECTED:\n            self._ledger.end_delivery(order.ref, token)",
        "        else:\n            self._ledger.end_delivery(order.ref, token)",
    ),
    Slip(
        "ledger: an older release's instants never adopted",
        f"{LAYER}/ledger_items.py",
        "    _adopt_text_instants(store, item, repair)\n",
        "",
    ),
    Slip(
        "forwarder: stranded marks uncounted",
        f"{LAYER}/mark.py",
        "            writes.stranded += stranded",
        "            pass",
    ),
    Slip(
        "poller: claims take the whole lease at once",
        f"{LAYER}/poll.py",
        "result.run_id, self._claim_seconds, force",
        "result.run_id, self.lease_seconds, force",
    ),
    Slip(
        "forwarder: no mark past the deadline ignored",
        f"{LAYER}/mark.py",
        "        if work and time_left() <= 0:",
        "        if False:",
    ),
    # The poller.
    Slip(
        "poller: unknown claims skipped",
        f"{LAYER}/poll.py",
        '                self._give_back(ref, result, f"could not claim order: {error}")',
        "                result.skipped += 1",
    ),
    Slip(
        "poller: failed sends keep the lease",
        f"{LAYER}/poll.py",
        "            self.ledger.release(ref, result.run_id)  # let the next poll try again",
        "            pass",
    ),
    Slip(
        "poller: stall needs nothing stuck",
        f"{LAYER}/poll.py",
        "stats.page_repeated and result.enqueued == 0 and stuck > 0",
        "stats.page_repeated and stuck > 0",
    ),
    Slip(
        "paging: id-less entries always new",
        f"{LAYER}/traede.py",
        "                if fingerprint in stats.seen_invalid:",
        "                if False:",
    ),
    Slip(
        "paging: bool ids are ids",
        f"{LAYER}/traede.py",
        "            if type(order_id) is int:",
        "            if isinstance(order_id, int):",
    ),
]


def run(command: list[str], timeout: float) -> bool:
    """True when the tests caught the slip (they failed)."""
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutants"}  # the CI examples, without shrinking what fails
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        return True  # a slip that hangs the suite is caught too
    return done.returncode != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", choices=["unit", "all"], default="unit")
    parser.add_argument("--only", help="run the slips whose name contains this")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed run still restores the tree
    pytest = [str(ROOT / ".venv/bin/pytest"), "-q", "-x", "-p", "no:cacheprovider"]
    rows = []
    for slip in SLIPS:
        if args.only and args.only not in slip.name:
            continue
        path = ROOT / slip.path
        original = path.read_text()
        if original.count(slip.old) != 1:
            print(f"{slip.name}: its text is not in {slip.path} exactly once; fix the slip", file=sys.stderr)
            return 2
        started = time.monotonic()
        try:
            path.write_text(original.replace(slip.old, slip.new))
            # The rule tests first (seconds), then the simulation, which takes longer.
            unit = run([*pytest, "tests/unit", "--deselect", SIMULATION], 600) or run([*pytest, SIMULATION], 600)
            rest = None
            if not unit and args.tier == "all":
                rest = run([*pytest, "tests/integration", "tests/faults"], 1800)
        finally:
            path.write_text(original)
        rows.append({"slip": slip.name, "unit": unit, "rest": rest, "seconds": round(time.monotonic() - started)})
        print(json.dumps(rows[-1]), flush=True)
    unit_caught = sum(r["unit"] for r in rows)
    all_caught = sum(bool(r["unit"] or r["rest"]) for r in rows)
    print(f"\nunit tier caught {unit_caught} of {len(rows)}", end="")
    print(f"; the whole suite {all_caught} of {len(rows)}" if args.tier == "all" else "")
    for r in rows:
        if not (r["unit"] or r["rest"]):
            print(f"  not caught: {r['slip']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
