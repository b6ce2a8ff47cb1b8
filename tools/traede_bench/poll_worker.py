"""One poll in a fresh interpreter: instrument, cold start, invoke once, write a JSON report.

`python -m traede_bench.poll_worker SPEC` (started by `scenarios.big_poll`). A process of its own,
so that its peak RSS (VmHWM) is the poller's, as Lambda's "Max Memory Used" would be.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from traede_bench.timing import CallCounts, Recorder, breakdown, install


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB; not ru_maxrss, which a child inherits from its parent."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


class SentBodies:
    """The orders the poller put on the queue, read from its own SendMessageBatch calls (the queue is purged)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.with_lines: set[int] = set()

    def install(self) -> None:
        import botocore.session

        create = botocore.session.Session.create_client

        def create_noting(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = create(session, *args, **kwargs)
            client.meta.events.register("provide-client-params.sqs.SendMessageBatch", self._note)
            return client

        botocore.session.Session.create_client = create_noting  # type: ignore[method-assign,assignment]

    def _note(self, params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            order = json.loads(entry["MessageBody"])
            if isinstance(order, dict) and isinstance(order.get("id"), int):
                self.ids.add(order["id"])
                if order.get("lines"):
                    self.with_lines.add(order["id"])


def run(spec: dict[str, Any]) -> dict[str, Any]:
    recorder = install(Recorder(hosts=dict(spec["hosts"])))  # before the cold start builds its clients
    sent = SentBodies()
    sent.install()
    from traede_local.lambda_runtime import LocalFunction
    from traede_local.template import FunctionSpec

    fields = spec["function"]
    fn = LocalFunction(FunctionSpec(**{**fields, "code_dir": Path(fields["code_dir"])}), overrides=spec["overrides"])
    fn.cold_start()
    recorder.clear()  # the secret fetch of the cold start is not part of the poll
    rss_before = status_mb("VmRSS")
    started = time.monotonic()
    error = None
    try:
        result = fn.invoke(spec["event"])
    except Exception as exc:  # reported, not raised: the parent says what failed
        result, error = {}, f"{type(exc).__name__}: {exc}"
    ended = time.monotonic()
    spans = recorder.within(started, ended)
    counts = CallCounts.of(spans)
    return {
        "result": result,
        "error": error,
        "init_seconds": fn.init_seconds,
        "seconds": ended - started,
        "breakdown": breakdown(spans, started, ended),
        "calls": counts.by_operation,
        "read_units": counts.read_units,
        "write_units": counts.write_units,
        "sqs_billed_requests": counts.sqs_billed_requests,
        "rss_before_mb": rss_before,
        "peak_rss_mb": status_mb("VmHWM"),
        "bodies_checked": len(sent.ids),
        "bodies_with_lines": len(sent.with_lines),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    Path(spec["out"]).write_text(json.dumps(run(spec)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
