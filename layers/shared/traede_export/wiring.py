"""Builds the adapters once per container, from validated configuration.

Each builder imports only what its function runs (the poller never loads the forwarder's
logic, nor the forwarder the poller's): cold start is import time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import requests
from botocore.config import Config

from traede_export.claim_check import ClaimCheck
from traede_export.config import ForwarderConfig, HttpSettings, LargeOrders, PollerConfig, TraedeSettings
from traede_export.credentials import SecretReader, target_headers, traede_headers
from traede_export.http import HeaderAuth, build_session
from traede_export.ledger import ExportLedger
from traede_export.queue import QueueWriter
from traede_export.redact import install_log_filter
from traede_export.traede import TraedeClient

if TYPE_CHECKING:
    from traede_export.forward import Forwarder
    from traede_export.poll import Poller


def aws_client(service: str, config: Config | None = None) -> Any:
    # boto3 honours AWS_ENDPOINT_URL itself, so the same code runs against moto.
    return _aws_session().client(service, config=config)  # type: ignore[call-overload]


@functools.cache
def _aws_session() -> boto3.session.Session:
    """One session per container: its clients share the loaded endpoint and service data."""
    return boto3.session.Session()


def _traede_client(
    settings: TraedeSettings, session: requests.Session, timeout: tuple[float, float], secrets: SecretReader
) -> TraedeClient:
    session.auth = HeaderAuth(traede_headers(settings.credentials_secret, secrets))
    return TraedeClient(session, settings.api_url, settings.system_id, timeout)


AWS_READ_TIMEOUT_CAP = 5.0  # seconds between bytes; 3 attempts then fit well inside either function's time


def _bounded(http: HttpSettings) -> Config:
    """For every AWS call (DynamoDB, SQS, S3, Secrets Manager): boto3's defaults (60 s read timeout,
    up to 5 attempts) let one stalled call outlive the function, stranding a page's claims or a
    batch's leases, and a stalled secret read holds every POST thread behind the reader's lock.
    Capped: HTTP_READ_TIMEOUT may be up to 40 s for a slow ERP, and 3 x 40 s would still outlive it."""
    return Config(
        connect_timeout=http.connect_timeout,
        read_timeout=min(http.read_timeout, AWS_READ_TIMEOUT_CAP),
        retries={"mode": "standard", "max_attempts": 3},
    )


def _claim_check(large: LargeOrders, http: HttpSettings) -> ClaimCheck:
    return ClaimCheck(aws_client("s3", _bounded(http)), large.bucket, large.threshold)


def _secret_reader(http: HttpSettings) -> SecretReader:
    return SecretReader(lambda: aws_client("secretsmanager", _bounded(http)))


@dataclass(frozen=True)
class PollerRuntime:
    poller: Poller
    ledger: ExportLedger
    sessions: tuple[requests.Session, ...]


@dataclass(frozen=True)
class ForwarderRuntime:
    forwarder: Forwarder
    sessions: tuple[requests.Session, ...]
    claims: ClaimCheck  # resolves large orders' pointers as records are read


def build_poller(cfg: PollerConfig) -> PollerRuntime:
    from traede_export.poll import Poller

    install_log_filter()
    session = build_session()
    aws = _bounded(cfg.http)
    ledger = ExportLedger.on_dynamodb(aws_client("dynamodb", aws), cfg.ledger_table, cfg.traede.system_id)
    sqs = aws_client("sqs", aws)
    poller = Poller(
        traede=_traede_client(cfg.traede, session, cfg.http.timeout, _secret_reader(cfg.http)),
        ledger=ledger,
        queue=QueueWriter(sqs, cfg.queue_url),
        dlq=QueueWriter(sqs, cfg.dlq_url),
        system_id=cfg.traede.system_id,
        options=cfg.export,
        lease_seconds=cfg.lease_seconds,
        claims=_claim_check(cfg.large, cfg.http),
    )
    return PollerRuntime(poller, ledger, (session,))


def build_forwarder(cfg: ForwarderConfig) -> ForwarderRuntime:
    from concurrent.futures import ThreadPoolExecutor

    from traede_export.forward import Forwarder
    from traede_export.mapping import load_checked
    from traede_export.target import ReferenceExpression, RequestShape, TargetClient

    install_log_filter()
    aws = _bounded(cfg.http)
    # Separate sessions: each carries its own credentials, and neither can leak to the other host.
    traede_session = build_session(pool_size=cfg.concurrency)
    target_session = build_session(pool_size=cfg.concurrency)
    secrets = _secret_reader(cfg.http)
    target_session.auth = HeaderAuth(target_headers(cfg.target_credentials_secret, secrets))
    shape = RequestShape(
        method=cfg.target_method,
        headers=cfg.target_static_headers,
        mapping=load_checked(cfg.target_mapping),  # a broken mapping fails the cold start, naming the file
        system_id=cfg.traede.system_id,
    )
    reference = ReferenceExpression.load_checked(cfg.target_reference)  # one that does not compile fails here too
    forwarder = Forwarder(
        target=TargetClient(
            target_session, cfg.target_url, cfg.http.timeout, cfg.conflict_is_delivered, shape, reference
        ),
        traede=_traede_client(cfg.traede, traede_session, cfg.http.timeout, secrets),
        ledger=ExportLedger.on_dynamodb(aws_client("dynamodb", aws), cfg.ledger_table, cfg.traede.system_id),
        dlq=QueueWriter(aws_client("sqs", aws), cfg.dlq_url),
        system_id=cfg.traede.system_id,
        pool=ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="forward"),
        margin=cfg.time_margin,
        hold=cfg.unanswered_hold,
    )
    return ForwarderRuntime(forwarder, (traede_session, target_session), _claim_check(cfg.large, cfg.http))
