"""The benchmark's output: targets, per-order figures (for `make cost`), a markdown table and a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from traede_bench.timing import CATEGORIES


def per_order(results: dict[str, Any]) -> dict[str, float]:
    """What one order costs in calls, units and Lambda time: the input of `traede_bench.cost`."""
    fwd = results["forwarder"]["phases"][-1]  # at the target latency
    poll = results["poll"]
    n = max(1, int(poll["result"].get("enqueued") or poll["n"]))
    return {
        "forwarder_seconds": fwd["handler_seconds_total"] / fwd["records"],
        "forwarder_read_units": fwd["read_units_per_order"],
        "forwarder_write_units": fwd["write_units_per_order"],
        "forwarder_batch_size": fwd["records"] / fwd["batches"],
        "forwarder_log_bytes": results["forwarder"]["log_bytes_per_order"],
        "poll_seconds": poll["seconds"] / n,
        "poll_read_units": poll["read_units"] / n,
        "poll_write_units": poll["write_units"] / n,
        "poll_sqs_requests": poll["sqs_billed_requests"] / n,
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    fwd = results["forwarder"]
    at = fwd["phases"][-1]
    poll = results["poll"]
    enqueued = poll["result"].get("enqueued")
    rows = [
        {
            "target": f"forwarder, {at['records']} orders at {at['latency_ms']} ms: >= 8x below one-at-a-time",
            "measured": f"{at['ratio']:.1f}x ({at['one_at_a_time_floor_seconds']:.1f} s floor / "
            f"{at['handler_seconds_total']:.2f} s handler time)",
            "ok": at["ratio"] >= 8,
        },
        {
            "target": f"mark calls = ceil(N/10) for one forwarder run of N={fwd['orders']}",
            "measured": f"{fwd['mark_calls']} (ceil = {fwd['mark_calls_ideal']}), {fwd['duplicates']} duplicates, "
            f"{fwd['still_pending']} left pending",
            "ok": fwd["mark_calls"] == fwd["mark_calls_ideal"] and fwd["duplicates"] == 0 and fwd["still_pending"] == 0,
        },
        {
            "target": f"one poll of {poll['n']:,} orders with lines: < 60 s",
            "measured": f"{poll['seconds']:.1f} s, {enqueued} enqueued, lines in "
            f"{poll['bodies_with_lines']}/{poll['bodies_checked']} bodies",
            "ok": poll["seconds"] < 60
            and enqueued == poll["n"]
            and poll["lines_requested"]
            and poll["bodies_with_lines"] == poll["bodies_checked"] == poll["n"],
        },
        {
            "target": "the poll's peak RSS < 256 MB",
            "measured": f"{poll['peak_rss_mb']:.0f} MB (VmHWM of its process; {poll['rss_before_mb']:.0f} MB before)",
            "ok": poll["peak_rss_mb"] < 256,
        },
    ]
    for name, figures in results["init"].items():
        rows.append(
            {
                "target": f"{name} cold-start import < 300 ms",
                "measured": f"{figures['median_ms']:.0f} ms (median of {len(figures['samples_ms'])} interpreters)",
                "ok": figures["median_ms"] < 300,
            }
        )
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def where_time_goes_rows(results: dict[str, Any]) -> list[tuple[str, float, dict[str, float], str]]:
    """(label, total seconds, breakdown, calls) for each forwarder phase (mean batch) and the poll."""
    rows = []
    setups = (("forwarder_before", ", previous set-up"), ("forwarder", ""))
    for key, suffix in ((k, s) for k, s in setups if k in results):
        for phase in results[key]["phases"]:
            parts = phase["breakdown_mean_seconds"]
            calls = ", ".join(f"{op.split('.')[-1]} {n:g}" for op, n in phase["calls_per_batch"].items())
            rows.append(
                (
                    f"forwarder batch of {phase['records'] / phase['batches']:g}, receiver {phase['latency_ms']} ms "
                    f"(mean of {phase['batches']}{suffix})",
                    sum(parts.values()),
                    parts,
                    calls,
                )
            )
    poll = results["poll"]
    calls = ", ".join(f"{op.split('.')[-1]} {n}" for op, n in poll["calls"].items())
    rows.append((f"one poll of {poll['n']:,} orders", poll["seconds"], poll["breakdown"], calls))
    return rows


def set_up_lines(results: dict[str, Any]) -> list[str]:
    """What the set-up itself does to the forwarder's figures, measured in the same run."""
    before, warm = results.get("forwarder_before"), results.get("warm_up")
    if not before or not warm:
        return []
    then, now = before["phases"][-1], results["forwarder"]["phases"][-1]
    first, last = warm["first"], warm["last"]
    return [
        "## The set-up's share",
        "",
        f"The same code at {now['latency_ms']} ms: {then['ratio']:.2f}x with the receiving system in the benchmark's "
        f"process and DynamoDB Local cold (the previous set-up), {now['ratio']:.2f}x with the receiver in a process "
        f"of its own and DynamoDB Local warmed up by {warm['rounds']} rounds ({warm['seconds']:.0f} s). "
        "Warming up, DynamoDB Local's calls went from "
        + ", ".join(f"{name} {first[name]:.1f} to {last[name]:.1f}" for name in first)
        + " (medians of the first and last rounds, in ms).",
        "",
    ]


def markdown(results: dict[str, Any]) -> str:
    head = "| scenario | total ms | " + " | ".join(f"{c} ms" for c in CATEGORIES) + " | calls |"
    lines = [
        "## Where time goes",
        "",
        head,
        "|" + "---|" * (len(CATEGORIES) + 3),
    ]
    for label, total, parts, calls in where_time_goes_rows(results):
        cells = " | ".join(f"{_ms(parts.get(c, 0.0))} ({parts.get(c, 0.0) / total:.0%})" for c in CATEGORIES)
        lines.append(f"| {label} | {_ms(total)} | {cells} | {calls} |")
    lines += [
        "",
        "Wall-clock time inside the handler's invocation. An instant during which calls of k kinds are open counts "
        "1/k to each; an instant with no call open is our own code (including Python's and the SDK's work between "
        "calls). AWS = botocore from provide-client-params to after-call (serialising, signing, HTTP to moto or "
        "DynamoDB Local, parsing); receiver and Traede = requests' HTTPAdapter.send.",
        "",
        *set_up_lines(results),
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['ok'] else 'NO'} |" for t in results["targets"]]
    lines += ["", "## Per order (input of `make cost`)", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in results["per_order"].items()]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = where_time_goes_rows(results)
    colours = ["#d95f02", "#7570b3", "#1b9e77", "#66a61e", "#999999"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    panels = [(axes[0], rows[:-1], 1000.0, "ms per forwarder batch"), (axes[1], rows[-1:], 1.0, "seconds")]
    for ax, panel_rows, scale, unit in panels:
        labels = [r[0].replace(", receiver", "\nreceiver").replace(" (mean", "\n(mean") for r in panel_rows]
        left = [0.0] * len(panel_rows)
        for category, colour in zip(CATEGORIES, colours, strict=True):
            widths = [r[2].get(category, 0.0) * scale for r in panel_rows]
            ax.barh(labels, widths, left=left, color=colour, label=category)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_xlabel(unit)
        ax.invert_yaxis()
        ax.grid(True, axis="x", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(CATEGORIES), fontsize=9, frameon=False)
    fig.suptitle("Where time goes (moto for SQS, DynamoDB Local for the ledger, local Traede sandbox and receiver)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinity become null, floats are rounded."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def write(results: dict[str, Any], out: Path) -> list[Path]:
    results["per_order"] = per_order(results)
    results["targets"] = targets(results)
    paths = [out / "results.json", out / "results.md", out / "where-time-goes.png"]
    paths[0].write_text(json.dumps(clean(results), indent=2), encoding="utf-8")
    paths[1].write_text(markdown(results), encoding="utf-8")
    plot(results, paths[2])
    return paths
