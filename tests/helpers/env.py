"""The functions' environment as the template gives it, for tests that read configuration."""

from __future__ import annotations

from traede_export.config import Env

FORWARDER = {
    Env.TRAEDE_SYSTEM_ID: "erp",
    Env.TRAEDE_CREDENTIALS_SECRET: "traede/creds",
    Env.TARGET_URL: "https://erp.example.com/orders",
    Env.DLQ_URL: "https://sqs.eu-west-1.amazonaws.com/1/dlq",
    Env.LEDGER_TABLE: "ledger",
    Env.LARGE_ORDER_BUCKET: "large-orders",
}
POLLER = {**FORWARDER, Env.QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/1/q"}
