"""SQS-triggered forwarder: deliver each order to the receiving system, then mark it exported."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from traede_export.config import ForwarderConfig
from traede_export.events import read_record
from traede_export.forward import BatchOutcome, partial_batch_response
from traede_export.http import arm_deadline
from traede_export.redact import json_dumps
from traede_export.wiring import build_forwarder

if TYPE_CHECKING:  # a TypedDict, for the annotation only: importing Powertools' batch package costs ~30 ms
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = Logger(json_serializer=json_dumps)  # every line masked: see redact.py
metrics = Metrics()
CONFIG = ForwarderConfig.from_env()  # a bad value fails the cold start, naming the variable
RUNTIME = build_forwarder(CONFIG)
# Records are read at once: a stalled S3 read of a large order costs the batch one read's time, not one each.
READERS = ThreadPoolExecutor(CONFIG.concurrency, thread_name_prefix="read")

METRICS = {
    "delivered": "OrdersDelivered",
    "already_delivered": "OrdersAlreadyDelivered",
    "already_marked": "OrdersAlreadyMarked",
    "rejected": "OrdersRejected",
    "failed": "DeliveryFailures",
    "invalid": "InvalidOrders",  # the poller counts its invalid export entries under the same name
    "not_started": "OrdersNotStarted",
    "deferred": "DeliveriesDeferred",
    "stale": "StaleDeliveries",
    "went_backwards": "VersionWentBackwards",
    "large_missing": "LargeOrderMissing",
    "large_mismatch": "LargeOrderMismatch",
    "superseded": "OrdersSuperseded",
    "marked": "OrdersMarked",
    "mark_failures": "MarkFailures",
    "mark_refused": "MarksRefused",
    "stranded_marks": "MarkRecordsStranded",
    "reference_missing": "ReferenceMissing",  # the note falls back to the key alone; no alarm (docs/operations.md)
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    deadline = arm_deadline(RUNTIME.sessions, context.get_remaining_time_in_millis(), CONFIG.time_margin)

    records = list(SQSEvent(event).records)
    messages = list(READERS.map(lambda r: read_record(r, RUNTIME.claims), records))  # Forwarder never sees SQS types
    outcome = BatchOutcome()
    try:
        RUNTIME.forwarder.forward(messages, lambda: deadline - time.monotonic(), outcome)
    finally:  # a failed invocation counts what it did too: a stranded mark record above all
        counts = outcome.summary.counts()
        for field, metric in METRICS.items():
            metrics.add_metric(metric, MetricUnit.Count, counts[field])
        logger.info("batch finished", extra=counts)
    return partial_batch_response((r.message_id for r in records), outcome)
