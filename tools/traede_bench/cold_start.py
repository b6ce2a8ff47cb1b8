"""Each handler's cold-start import time, as the median of fresh interpreters (`make cold-start`).

A fresh interpreter per run, with the environment `template.yaml` gives the function and only the
function's code directory and the layer on its path, as in a Lambda container. The time is
`time.perf_counter()` around `import app`: configuration, clients and sessions included (they are
built at import), no network call (secrets are read on the first request). The CPU time
(`time.process_time()`) is printed next to it: importing is CPU-bound, so on a busy machine the
CPU figure is the steadier one. `--top N` adds the
slowest modules of one more run under `python -X importtime`.

`python -m traede_bench.cold_start [--runs 15] [--top 0] [--doc FILE]`
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

from traede_bench import doc
from traede_local.template import ROOT, Resolver, functions, load_template

LAYER = ROOT / "layers" / "shared"
TARGET_MS = 300
_PROBE = (
    "import time, sys; t, c = time.perf_counter(), time.process_time(); import app; "
    "print(round((time.perf_counter() - t) * 1000, 2), round((time.process_time() - c) * 1000, 2)); "
    "print(','.join(sorted(m for m in ('jsonata', 'requests', 'boto3') if m in sys.modules)))"
)


def _environment(extra: dict[str, str], code_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(extra)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([code_dir, str(LAYER)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            # No network at import; dummies so boto3 builds its clients as in Lambda.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    return env


def measure(runs: int, parameters: dict[str, str]) -> dict[str, dict[str, object]]:
    template = load_template()
    resolver = Resolver(
        template,
        parameters={
            "SystemId": "cold-start",
            "TraedeApiUrl": "https://api.example.test",
            "TargetUrl": "https://erp.example.test/orders",
            "ExistingTraedeSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:traede",
            "ExistingTargetSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:target",
            **parameters,
        },
        refs={
            "LedgerTable": "ledger",
            "OrderQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/orders",
            "DeadLetterQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        },
    )
    rows: dict[str, dict[str, object]] = {}
    for name, spec in functions(template, resolver).items():
        env = _environment({**spec.environment, "AWS_LAMBDA_FUNCTION_NAME": name}, str(spec.code_dir))
        times, cpu, loaded = [], [], ""
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _PROBE], env=env, cwd=spec.code_dir, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise RuntimeError(f"{name} failed to import:\n{out.stderr[-2000:]}")
            ms, loaded = out.stdout.splitlines()[:2]
            wall, used = ms.split()
            times.append(float(wall))
            cpu.append(float(used))
        rows[name] = {
            "median_ms": round(statistics.median(times), 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
            "median_cpu_ms": round(statistics.median(cpu), 1),
            "runs": runs,
            "loaded": loaded,
            "env": env,
        }
    return rows


def top_modules(env: dict[str, str], cwd: str, count: int) -> list[tuple[int, str]]:
    """The slowest imports by cumulative microseconds, from `python -X importtime`."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"], env=env, cwd=cwd, capture_output=True, text=True
    )
    rows = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            if len(name) - len(name.lstrip()) <= 3:  # top-level imports only (depth 1)
                rows.append((int(parts[1]), name.strip()))
    return sorted(rows, reverse=True)[:count]


def markdown(rows: dict[str, dict[str, object]], runs: int) -> str:
    lines = [
        f"Fresh interpreters per handler: {runs}. Target: under {TARGET_MS} ms.",
        "",
        "| handler | median ms | min ms | max ms | median CPU ms | also loaded | under target |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for name, r in rows.items():
        ok = "yes" if float(str(r["median_ms"])) < TARGET_MS else "NO"
        cells = [name, r["median_ms"], r["min_ms"], r["max_ms"], r["median_cpu_ms"], r["loaded"], ok]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per handler (default 15)")
    parser.add_argument("--mapping", help="TargetMapping parameter, e.g. builtin:generic-erp (jsonata then loads)")
    parser.add_argument("--top", type=int, default=0, help="also list the N slowest top-level imports")
    parser.add_argument("--json", action="store_true")
    doc.add_option(parser, "cold-start")
    args = parser.parse_args(argv)
    if args.doc and args.mapping:
        parser.error("--doc records the template's defaults only (no --mapping)")
    rows = measure(args.runs, {"TargetMapping": args.mapping} if args.mapping else {})
    if args.doc:
        doc.write_block(args.doc, "cold-start", markdown(rows, args.runs))
    if args.json:
        print(json.dumps({k: {f: v for f, v in r.items() if f != "env"} for k, r in rows.items()}, indent=2))
        return 0
    print(f"{'handler':18} {'median ms':>9} {'min':>7} {'max':>7} {'cpu ms':>7}  loaded            (runs: {args.runs})")
    for name, r in rows.items():
        verdict = "ok" if float(str(r["median_ms"])) < TARGET_MS else f"over {TARGET_MS} ms"
        print(
            f"{name:18} {r['median_ms']:>9} {r['min_ms']:>7} {r['max_ms']:>7} {r['median_cpu_ms']:>7}"
            f"  {r['loaded']:17} {verdict}"
        )
        if args.top:
            env = r["env"]
            assert isinstance(env, dict)
            for us, module in top_modules(env, env["PYTHONPATH"].split(os.pathsep)[0], args.top):
                print(f"    {us / 1000:8.1f} ms  {module}")
    print(f"python {sys.version.split()[0]}, cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
