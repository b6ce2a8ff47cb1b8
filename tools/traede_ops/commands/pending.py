"""`traede-export pending`: the orders Traede's export would give the stack now; it only GETs.

The query is the poller's own: read with the poller's parser (`config.ExportConfig`) from the
poller function's environment (`--stack`/`--function`) or from this shell's (`TRAEDE_API_URL`,
`TRAEDE_SYSTEM_ID`, `EXPORT_*`), and paged by the poller's own rules (`TraedeClient.iter_export`).
Nothing is claimed, queued or marked. The credentials (the Traede secret, or `TRAEDE_ACCESS_TOKEN`
and `TRAEDE_APP_KEY`) are registered with redact.py as they are read, so nothing prints them.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from traede_export.claim_check import is_large
from traede_export.config import DEFAULT_INCLUDES, Env, ExportConfig
from traede_export.credentials import traede_headers
from traede_export.errors import ConfigError, ConfigurationError, InvalidOrder, TraedeError
from traede_export.http import HeaderAuth, build_session
from traede_export.ledger import ExportLedger, LedgerEntry
from traede_export.models import OrderRef, message_body
from traede_export.protocol import State, state_of
from traede_export.redact import register
from traede_export.traede import ExportStats, TraedeClient, export_params
from traede_ops import ops, where
from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, progress, show
from traede_ops.parser import Command

ACCESS_TOKEN, APP_KEY = "TRAEDE_ACCESS_TOKEN", "TRAEDE_APP_KEY"
# The ledger's view of an order Traede lists, in the words of the issue and the runbook.
VIEW = {
    State.UNSEEN: "new",
    State.CLAIMED: "in flight",
    State.DELIVERING: "in flight",
    State.DELIVERED: "delivered, not marked",
    State.REFUSED: "refused",
    State.MARKED: "marked, still listed",  # a mark record whose mark was never made: the poll after its lease marks it
    State.SUPERSEDED: "older than the ledger's",  # Traede lists a version older than one the stack knows
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--save", metavar="DIR", help="write each order to DIR/<id>.json, as `map` and `replay` read it")


@dataclass
class Source:
    """Where the query and the credentials come from, and the ledger if one is known."""

    config: ExportConfig
    headers: Callable[[], dict[str, str]]
    described: str
    ledger: ExportLedger | None = None


@dataclass
class Pending:
    id: int | None
    number: str | None
    updated_at: str | None
    size: int  # bytes, as the poller queues it
    large: bool  # over the threshold: it would travel through S3
    invalid: str | None = None  # not an order: the poller would park it on the DLQ once
    ledger: str | None = None  # the ledger's view (with --stack or --table)
    state: str | None = None  # the protocol's word for that view
    saved: str | None = None


def _config(environ: Mapping[str, str], where_from: str) -> ExportConfig:
    try:
        return ExportConfig.from_env(environ)
    except ConfigError as exc:
        raise ops.OpsError(f"{where_from}: {exc}") from None


def shell_credentials() -> Callable[[], dict[str, str]] | None:
    """Traede's headers from TRAEDE_ACCESS_TOKEN and TRAEDE_APP_KEY, checked as the secret is; None if unset."""
    token, app_key = os.environ.get(ACCESS_TOKEN, ""), os.environ.get(APP_KEY, "")
    if not token or not app_key:
        return None
    register(token, f"Bearer {token}", app_key)  # masked from here on, whatever fails next
    credentials = {"access_token": token, "app_key": app_key}
    return traede_headers(f"{ACCESS_TOKEN}/{APP_KEY}", lambda _: credentials)


def from_stack(target: ops.Target) -> Source:
    """The poller's own environment (lambda:GetFunctionConfiguration) and the Traede secret it names
    (secretsmanager:GetSecretValue; not read when this shell has the credentials), and the ledger."""
    function = target.value("function")
    answer = ops.client("lambda", target.region).get_function_configuration(FunctionName=function)
    environ = {k: str(v) for k, v in answer.get("Environment", {}).get("Variables", {}).items()}
    config = _config(environ, f"the environment of {function}")
    headers = shell_credentials()
    if headers is None:
        secret = environ.get(Env.TRAEDE_CREDENTIALS_SECRET)
        if not secret:
            raise ops.OpsError(f"{function} names no {Env.TRAEDE_CREDENTIALS_SECRET}")
        secrets = ops.client("secretsmanager", target.region)

        def read(name: str) -> Any:
            try:
                return json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
            except ValueError:
                raise ConfigurationError(f"secret {name!r} is not valid JSON") from None

        headers = traede_headers(secret, read)
    table = target.table or environ.get(Env.LEDGER_TABLE)
    ledger = ExportLedger.on_dynamodb(ops.client("dynamodb", target.region), table, config.system_id) if table else None
    return Source(config, headers, f"the poller {function}", ledger)


def from_environment(target: ops.Target) -> Source:
    """This shell's variables, as `traede-local run` reads them against a real Traede."""
    environ = dict(os.environ)
    if target.system_id:
        environ[Env.TRAEDE_SYSTEM_ID] = target.system_id
    # Unset, the query is a stack's with the template's defaults (EXPORT_INCLUDES="" asks for none).
    environ.setdefault(Env.EXPORT_INCLUDES, DEFAULT_INCLUDES)
    config = _config(environ, "the environment")
    headers = shell_credentials()
    if headers is None:
        raise ops.OpsError(f"set {ACCESS_TOKEN} and {APP_KEY} (or give --stack)")
    ledger = None
    if target.table:
        ledger = ExportLedger.on_dynamodb(ops.client("dynamodb", target.region), target.table, config.system_id)
    return Source(config, headers, "the environment", ledger)


def pending(source: Source, save: Path | None, advance: Callable[..., Any] = lambda *_: None) -> dict[str, Any]:
    """Ask the export as the poller does, every page; GETs only."""
    cfg = source.config
    session = build_session()
    session.auth = HeaderAuth(source.headers)
    client = TraedeClient(session, cfg.api_url, cfg.system_id, cfg.http.timeout)
    stats = ExportStats()
    found: list[tuple[Pending, OrderRef | None, Any]] = []
    for page in client.iter_export(cfg.export, stats):
        for entry in page:
            body = message_body(entry)
            item = Pending(None, None, None, len(body.encode("utf-8")), is_large(body, cfg.large_threshold))
            ref = None
            try:
                ref = OrderRef.from_order(entry)
                item.id, item.updated_at = ref.order_id, ref.updated_at
                number = entry.get("order_number")
                item.number = None if number is None else str(number)
            except InvalidOrder as exc:
                item.invalid = str(exc)
            found.append((item, ref, entry))
        advance(len(found))
    if source.ledger is not None:
        entries = source.ledger.read(ref.order_id for _, ref, _ in found if ref is not None)
        _view(found, entries)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for item, ref, entry in found:
            if ref is not None:
                path = save / f"{ref.order_id}.json"
                path.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                item.saved = str(path)
    orders = [item for item, _, _ in found]
    return {
        "ok": True,
        "system_id": cfg.system_id,
        "source": source.described,
        "api_url": cfg.api_url,
        # The export's query parameters as the poller sends them (page by page).
        "query": [[name, value] for name, value in export_params(cfg.system_id, cfg.export, 0) if name != "page"],
        "large_threshold": cfg.large_threshold,
        "pages": stats.pages,
        "stopped_early": stats.stopped_early,
        "orders": [asdict(o) for o in orders],
        "count": sum(o.invalid is None for o in orders),
        "large": sum(o.large for o in orders),
        "invalid": sum(o.invalid is not None for o in orders),
        "saved_to": str(save) if save is not None else None,
    }


def _view(found: list[tuple[Pending, OrderRef | None, Any]], entries: Mapping[int, LedgerEntry]) -> None:
    import time

    now = time.time()
    for item, ref, _ in found:
        if ref is None:
            continue
        state = state_of(entries.get(ref.order_id), ref.version, now)
        item.state, item.ledger = state.value, VIEW[state]


def run(args: argparse.Namespace) -> int:
    target = where.target(args)
    try:
        source = from_stack(target) if target.function else from_environment(target)
        with progress(args, "orders") as advance:
            data = pending(source, Path(args.save) if args.save else None, advance)
    except ConfigurationError as exc:  # a secret or variable of the wrong shape: named, never quoted
        raise ops.OpsError(str(exc)) from None
    except TraedeError as exc:
        raise ops.OpsError(f"Traede: {exc}") from None
    orders = data["orders"]
    table = Table(title=f"{data['count']} order(s) Traede would export now to {data['system_id']}")
    columns = ["id", "number", "updated_at", "size", "through S3"] + (["ledger"] if source.ledger else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    for o in orders:
        size = f"{o['size'] / 1024:.1f} KiB"
        if o["invalid"]:
            table.add_row("?", "", "", size, "", escape(f"not an order: {o['invalid']}"))
            continue
        row = [str(o["id"]), o["number"] or "", o["updated_at"] or "", size, "yes" if o["large"] else "no"]
        table.add_row(*(escape(cell) for cell in row + ([o["ledger"] or ""] if source.ledger else [])))
    show(args, data, table)
    if not args.json:
        notes = [f"{data['pages']} page(s) from {data['api_url']}, query as {data['source']} asks it"]
        if data["large"]:
            notes.append(f"{data['large']} over {data['large_threshold']} bytes go through S3")
        if data["invalid"]:
            notes.append(f"{data['invalid']} entry(ies) are no order: the poller parks them on the DLQ")
        if data["saved_to"]:
            notes.append(f"saved to {data['saved_to']}/<id>.json")
        if data["stopped_early"]:
            notes.append("stopped at the page limit: there may be more")
        console.print(escape("; ".join(notes)) + ". Nothing was marked.", highlight=False, soft_wrap=True)
    return EXIT_OK if not data["stopped_early"] else EXIT_FAILURE


COMMAND = Command(
    "pending",
    "The orders Traede would export now, with the stack's own query; marks nothing.",
    add_arguments,
    run,
    description="Asks Traede's export as the poller does: its system_id, includes, filter groups,\n"
    "include_open and include_closed, page after page. It only GETs: nothing is claimed, queued\n"
    "or marked. With --stack (or --function) the query is read from the poller's environment\n"
    "and the credentials from the Traede secret it names (or TRAEDE_ACCESS_TOKEN and\n"
    "TRAEDE_APP_KEY, when set), and the ledger's view of each order is shown (new, in flight,\n"
    "delivered but not marked, refused). Without, from this shell:\n"
    "TRAEDE_API_URL, TRAEDE_SYSTEM_ID (or --system-id), TRAEDE_ACCESS_TOKEN, TRAEDE_APP_KEY and\n"
    "the EXPORT_* variables (unset: the template's defaults); --table adds the ledger's view.\n"
    "Credentials are never printed.\n"
    "--save DIR writes each order as DIR/<id>.json, which `map` and `replay` take as they are.",
)
