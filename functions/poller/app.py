"""Scheduled poller: fetch the orders pending export and put each one on the queue."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from traede_export.config import PollerConfig
from traede_export.errors import PollFailed
from traede_export.events import reexport_since
from traede_export.http import arm_deadline
from traede_export.redact import json_dumps
from traede_export.wiring import build_poller

logger = Logger(json_serializer=json_dumps)  # every line masked: see redact.py
metrics = Metrics()
CONFIG = PollerConfig.from_env()  # a bad value fails the cold start, naming the variable
RUNTIME = build_poller(CONFIG)


# PollResult field -> the metric that carries it (the dashboard and alarms in template.yaml name these).
METRICS = {
    "fetched": ("OrdersFetched", MetricUnit.Count),
    "enqueued": ("OrdersEnqueued", MetricUnit.Count),
    "skipped": ("OrdersSkippedInFlight", MetricUnit.Count),
    "failed": ("EnqueueFailures", MetricUnit.Count),
    "large": ("LargeOrdersEnqueued", MetricUnit.Count),
    "invalid": ("InvalidOrders", MetricUnit.Count),  # the forwarder counts unreadable messages under the same name
    "paging_stalled": ("PagingStalled", MetricUnit.Count),
    "blocked": ("PollBlocked", MetricUnit.Count),
    "seconds": ("PollDuration", MetricUnit.Seconds),
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    since = reexport_since(event)
    deadline = arm_deadline(RUNTIME.sessions, context.get_remaining_time_in_millis(), CONFIG.time_margin)
    logger.append_keys(run_id=context.aws_request_id, system_id=CONFIG.traede.system_id)

    result = RUNTIME.poller.run(context.aws_request_id, since, keep_going=lambda: time.monotonic() < deadline)

    counts = result.counts()
    for field, (metric, unit) in METRICS.items():
        metrics.add_metric(metric, unit, float(counts[field]))
    logger.info("poll finished", extra=counts)
    if result.error:
        raise PollFailed(result.error)
    RUNTIME.ledger.record_poll(result.run_id, {"fetched": result.fetched, "enqueued": result.enqueued})
    metrics.add_metric("PollSucceeded", MetricUnit.Count, 1)
    return result.counts()
