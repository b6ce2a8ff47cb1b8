"""The receiving system in a process of its own, driven over stdin (started by `scenarios.ReceiverProcess`).

An ERP is another machine: in the benchmark's own process its request threads would take the GIL
from the forwarder's threads. Prints its URL, then answers one line per command:
`latency SECONDS` -> `ok`; `stats` -> JSON {"delivered": [order ids], "duplicates": n}. Exits at EOF.
"""

from __future__ import annotations

import json
import sys

from traede_local.receiver import ReceivingSystem


def main() -> int:
    receiver = ReceivingSystem()
    print(receiver.start(), flush=True)
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "latency":
                receiver.faults.latency = float(argument)
                print("ok", flush=True)
            elif command == "stats":
                stats = {"delivered": sorted(receiver.delivered_ids()), "duplicates": receiver.duplicates()}
                print(json.dumps(stats), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
