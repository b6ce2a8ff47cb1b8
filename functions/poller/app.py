"""Scheduled poller: fetch the orders pending export and put each one on the queue."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from traede_export.config import PollerConfig
from traede_export.events import reexport_since
from traede_export.http import arm_deadline
from traede_export.redact import json_dumps
from traede_export.wiring import build_poller

logger = Logger(json_serializer=json_dumps)  # every line masked: see redact.py
metrics = Metrics()
CONFIG = PollerConfig.from_env()  # a bad value fails the cold start, naming the variable
RUNTIME = build_poller(CONFIG)


class PollFailed(RuntimeError):
    """The poll stopped on an error; what was enqueued before it stays enqueued."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    since = reexport_since(event)
    deadline = arm_deadline(RUNTIME.sessions, context.get_remaining_time_in_millis(), CONFIG.time_margin)
    logger.append_keys(run_id=context.aws_request_id, system_id=CONFIG.traede.system_id)

    result = RUNTIME.poller.run(context.aws_request_id, since, keep_going=lambda: time.monotonic() < deadline)

    metrics.add_metric("OrdersFetched", MetricUnit.Count, result.fetched)
    metrics.add_metric("OrdersEnqueued", MetricUnit.Count, result.enqueued)
    metrics.add_metric("OrdersSkippedInFlight", MetricUnit.Count, result.skipped)
    metrics.add_metric("EnqueueFailures", MetricUnit.Count, result.failed)
    metrics.add_metric("LargeOrdersEnqueued", MetricUnit.Count, result.large)
    metrics.add_metric("InvalidOrders", MetricUnit.Count, result.invalid)
    metrics.add_metric("PagingStalled", MetricUnit.Count, int(result.paging_stalled))
    metrics.add_metric("PollDuration", MetricUnit.Seconds, result.seconds)
    logger.info("poll finished", extra=result.counts())
    if result.error:
        raise PollFailed(result.error)
    RUNTIME.ledger.record_poll(result.run_id, {"fetched": result.fetched, "enqueued": result.enqueued})
    metrics.add_metric("PollSucceeded", MetricUnit.Count, 1)
    return result.counts()
