"""How should the poller take its claims? Measured on DynamoDB Local (`make measure-claims`).

Two ways to take N in-flight leases, each with the same condition as `ExportLedger.claim`:

* `update x8`: the poller's former way, one conditional UpdateItem per order (`ExportLedger.claim`
  itself), 8 in flight at once (the poller's `workers`).
* `transact`: TransactWriteItems of up to 100 conditional updates. A transaction is all or
  nothing: one order already in flight (or touched by an overlapping poll: `TransactionConflict`)
  cancels the whole call. The fallback reads `CancellationReasons`, drops the orders whose
  condition failed (they are skipped, as `claim` returning False) and retries the rest; a
  conflict is retried as it is. Sent 1 at a time (`transact x1`) or 8 at once (`transact x8`),
  in chunks of 100 or of one export page (60).
* `claim_many 60`: what the poller runs now, `ExportLedger.claim_many` on each export page of 60
  in turn (cancelled items retried a few times, then one UpdateItem each), calls counted on the wire.

Scenarios: every claim new (a first poll); 10% already in flight (a poll after edits); all in
flight (a re-poll before the forwarder caught up); two runs claiming the same orders at once
(overlapping polls: each order must be claimed exactly once in total). Each is run on fresh orders, repeated, and
reported as the median milliseconds per claim. DynamoDB Local runs on this machine, so a round
trip costs far less than from a Lambda to DynamoDB: the ratio of round trips matters as much as
these times. In AWS a transactional write also costs 2 write units per item instead of 1.

`python -m traede_bench.measure_claims [--claims 2000] [--repeat 3] [--json] [--doc FILE]`
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from traede_bench import doc
from traede_export.ledger import ExportLedger
from traede_export.ledger_store import DynamoStore
from traede_export.models import OrderRef, chunk
from traede_local.dynamodb_local import dynamodb_local

SYSTEM_ID = "measure"
LEASE_SECONDS = 600
VERSION = "2026-01-01 00:00:00"
WORKERS = 8  # Poller.workers
TRANSACT_MAX = 100  # DynamoDB's limit of items per TransactWriteItems
PAGE = 60  # one export page: what the poller has at hand without gathering pages


@dataclass
class Outcome:
    claimed: int = 0
    skipped: int = 0
    calls: int = 0  # round trips to DynamoDB


class WireCalls:
    """DynamoDB requests sent by one client (a botocore `before-send` hook), retries included."""

    def __init__(self, db: Any) -> None:
        self.count = 0
        db.meta.events.register("before-send.dynamodb", self)

    def __call__(self, **_: Any) -> None:
        self.count += 1


def claim_with_ledger(ledger: ExportLedger, refs: Sequence[OrderRef], run_id: str, wire: WireCalls) -> Outcome:
    before = wire.count
    won = [ok for page in chunk(list(refs), PAGE) for ok in ledger.claim_many(page, run_id, LEASE_SECONDS)]
    return Outcome(claimed=won.count(True), skipped=won.count(False), calls=wire.count - before)


def claim_with_updates(
    ledger: ExportLedger, refs: Sequence[OrderRef], run_id: str, pool: ThreadPoolExecutor
) -> Outcome:
    won = list(pool.map(lambda ref: ledger.claim(ref, run_id, LEASE_SECONDS), refs))
    return Outcome(claimed=won.count(True), skipped=won.count(False), calls=len(refs))


def _claim_update(ledger: ExportLedger, ref: OrderRef, run_id: str, now: int) -> dict[str, Any]:
    """The same update and condition as `ExportLedger.claim` (without `force`), as a transaction item."""
    return {
        "Update": {
            "TableName": cast(DynamoStore, ledger.store).table_name,
            "Key": {"pk": {"S": ledger._key(ref.order_id)}},  # the ledger's own key shape
            "UpdateExpression": "SET enqueued_version = :v, lease_until = :until, run_id = :run, expires_at = :ttl",
            "ConditionExpression": (
                "attribute_not_exists(enqueued_version) OR enqueued_version < :v OR lease_until < :now"
            ),
            "ExpressionAttributeValues": {
                ":v": {"S": ref.version},
                ":until": {"N": str(now + LEASE_SECONDS)},
                ":run": {"S": run_id},
                ":now": {"N": str(now)},
                ":ttl": {"N": str(now + 90 * 24 * 3600)},
            },
        }
    }


def transact_chunk(db: Any, ledger: ExportLedger, refs: Sequence[OrderRef], run_id: str) -> Outcome:
    """Claim one chunk in transactions, dropping the orders whose condition fails until the rest goes through."""
    outcome = Outcome()
    pending = list(refs)
    for _ in range(len(refs) + 10):  # each round drops at least one order or retries a conflict
        if not pending:
            return outcome
        now = int(time.time())
        outcome.calls += 1
        try:
            db.transact_write_items(TransactItems=[_claim_update(ledger, ref, run_id, now) for ref in pending])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            failed = {i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
            outcome.skipped += len(failed)
            pending = [ref for i, ref in enumerate(pending) if i not in failed]
            continue  # the rest again (a TransactionConflict alone retries the same set)
        outcome.claimed += len(pending)
        return outcome
    raise RuntimeError(f"claims of {len(refs)} orders did not settle")


def claim_with_transactions(
    db: Any, ledger: ExportLedger, refs: Sequence[OrderRef], run_id: str, pool: ThreadPoolExecutor | None, size: int
) -> Outcome:
    chunks = list(chunk(list(refs), size))
    if pool is None:
        parts = [transact_chunk(db, ledger, c, run_id) for c in chunks]
    else:
        parts = list(pool.map(lambda c: transact_chunk(db, ledger, c, run_id), chunks))
    return Outcome(
        claimed=sum(p.claimed for p in parts), skipped=sum(p.skipped for p in parts), calls=sum(p.calls for p in parts)
    )


@dataclass
class Row:
    scenario: str
    method: str
    claims: int
    ms_per_claim: float  # median over the repeats
    ms_per_claim_runs: list[float]
    calls: int
    claimed: int
    skipped: int


def measure(claims: int, repeat: int) -> list[Row]:
    db = boto3.client("dynamodb", config=Config(max_pool_connections=WORKERS * 2))
    table = f"claims-measure-{secrets.token_hex(3)}"
    db.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ledger = ExportLedger.on_dynamodb(db, table, SYSTEM_ID)
    wire = WireCalls(db)
    pool = ThreadPoolExecutor(WORKERS)
    methods: dict[str, Callable[[list[OrderRef], str], Outcome]] = {
        "update x8": lambda refs, run: claim_with_updates(ledger, refs, run, pool),
        "transact 100 x1": lambda refs, run: claim_with_transactions(db, ledger, refs, run, None, TRANSACT_MAX),
        "transact 100 x8": lambda refs, run: claim_with_transactions(db, ledger, refs, run, pool, TRANSACT_MAX),
        "transact 60 x8": lambda refs, run: claim_with_transactions(db, ledger, refs, run, pool, PAGE),
        "claim_many 60": lambda refs, run: claim_with_ledger(ledger, refs, run, wire),
    }
    scenarios = {"all new": 0.0, "10% in flight": 0.1, "all in flight": 1.0}
    next_id = 0

    def fresh(n: int) -> list[OrderRef]:
        nonlocal next_id
        next_id += n
        return [OrderRef(i, VERSION) for i in range(next_id - n, next_id)]

    # Warm the JVM's JIT and the connection pool first, uncounted.
    for method in methods.values():
        method(fresh(min(claims, 1000)), "warm-up")
    rows: list[Row] = []
    for scenario, busy in scenarios.items():
        for name, method in methods.items():
            runs: list[float] = []
            outcome = Outcome()
            for r in range(repeat):
                refs = fresh(claims)
                taken = refs[:: round(1 / busy)] if busy else []  # spread out: most chunks meet one
                if taken:
                    claim_with_updates(ledger, taken, "earlier-poll", pool)
                started = time.perf_counter()
                outcome = method(refs, f"run-{r}")
                runs.append((time.perf_counter() - started) * 1000 / claims)
                if (outcome.claimed, outcome.skipped) != (claims - len(taken), len(taken)):
                    raise AssertionError(f"{scenario}/{name}: {outcome} for {claims} claims, {len(taken)} in flight")
            rows.append(
                Row(
                    scenario=scenario,
                    method=name,
                    claims=claims,
                    ms_per_claim=statistics.median(runs),
                    ms_per_claim_runs=[round(x, 3) for x in runs],
                    calls=outcome.calls,
                    claimed=outcome.claimed,
                    skipped=outcome.skipped,
                )
            )
            print(
                f"{scenario:16} {name:16} {rows[-1].ms_per_claim:7.3f} ms/claim {outcome.calls:5} calls",
                file=sys.stderr,
            )
    # Two runs claim the same orders at once (overlapping polls): each order exactly once, in total.
    for name, method in methods.items():
        runs = []
        for _ in range(repeat):
            refs = fresh(claims)
            with ThreadPoolExecutor(2) as both:
                started = time.perf_counter()
                outcomes = list(both.map(lambda run, refs=refs, method=method: method(refs, run), ["run-a", "run-b"]))
                runs.append((time.perf_counter() - started) * 1000 / (2 * claims))
            claimed, skipped = sum(o.claimed for o in outcomes), sum(o.skipped for o in outcomes)
            if (claimed, skipped) != (claims, claims):
                raise AssertionError(f"two overlapping runs/{name}: {outcomes} for {claims} claims each")
        calls = sum(o.calls for o in outcomes)
        rows.append(Row("two overlapping", name, 2 * claims, statistics.median(runs), runs, calls, claimed, skipped))
        print(
            f"{'two overlapping':16} {name:16} {rows[-1].ms_per_claim:7.3f} ms/claim {calls:5} calls", file=sys.stderr
        )
    pool.shutdown()
    return rows


def markdown(rows: Sequence[Row], repeat: int) -> str:
    lines = [
        f"Median of {repeat} measurements per cell; milliseconds per claim, and DynamoDB calls.",
        "",
        "| scenario | method | ms per claim | calls |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {r.scenario} | {r.method} | {r.ms_per_claim:.3f} | {r.calls} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=2000, help="claims per measurement (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per cell; the median is reported")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    doc.add_option(parser, "claims")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")  # DynamoDB Local wants letters and digits only
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    started = time.monotonic()
    with dynamodb_local():
        rows = measure(args.claims, args.repeat)
    if args.doc:
        doc.write_block(args.doc, "claims", markdown(rows, args.repeat))
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(f"\n{'scenario':16} {'method':16} {'ms/claim':>8} {'calls':>6}  median of {args.repeat} x {args.claims}")
        for r in rows:
            print(f"{r.scenario:16} {r.method:16} {r.ms_per_claim:8.3f} {r.calls:6}")
        took = time.monotonic() - started
        print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, took {took:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
