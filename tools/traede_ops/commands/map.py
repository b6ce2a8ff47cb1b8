"""`traede-export map`: the request each order would produce (the forwarder's own request building); no AWS."""

from __future__ import annotations

import argparse
import json
import os

from rich.console import Console
from rich.markup import escape

from traede_ops.output import EXIT_FAILURE, EXIT_OK, console, fail
from traede_ops.parser import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="ORDER.json", help="order files or directories of them")
    p.add_argument("--mapping", help="a JSONata file, or a bundled mapping's name ('' for none)")
    p.add_argument("--url", help="target URL, may hold {id}-style placeholders (default: $TARGET_URL)")
    p.add_argument("--method", help="POST or PUT (default: $TARGET_METHOD, then POST)")
    p.add_argument("--headers", help="static headers as a JSON object (default: $TARGET_STATIC_HEADERS)")
    p.add_argument("--system-id", help="for the Idempotency-Key and $system_id (default: $TRAEDE_SYSTEM_ID)")
    p.add_argument("--reexport-since", help="preview a re-export: the instant, as the poller would send it")
    p.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="FILE",
        help="a saved ERP answer (curl -i, or JSON {status, headers, body}): show the reference it gives",
    )
    p.add_argument("--reference", help="the JSONata expression on the answer (default: $TARGET_REFERENCE)")


def run(args: argparse.Namespace) -> int:
    from traede_export.config import Env, read_target_url
    from traede_export.errors import ConfigError, MappingError
    from traede_export.target import DEFAULT_METHOD, METHODS, ReferenceExpression, RequestShape, parse_static_headers
    from traede_ops.preview import ReferencePreview, mapping_arg, preview, preview_references

    if not args.paths and not args.answer:
        return fail(args, "give order files, --answer FILE, or both")
    source = args.reference if args.reference is not None else os.environ.get(Env.TARGET_REFERENCE)
    if args.answer and not source:
        return fail(args, "--answer needs the expression: --reference EXPR, or set TARGET_REFERENCE")
    try:
        expression = ReferenceExpression.load_checked(source) if args.answer else None
    except MappingError as exc:
        return fail(args, str(exc))
    method = (args.method or os.environ.get(Env.TARGET_METHOD) or DEFAULT_METHOD).upper()
    if method not in METHODS:
        return fail(args, f"method must be one of {', '.join(METHODS)}, got {method!r}")
    try:
        # As the forwarder reads it: what its cold start refuses is refused here, and a URL's
        # password or query credential is masked in this command's output.
        url = read_target_url(args.url, "--url") if args.url else read_target_url(os.environ.get(Env.TARGET_URL))
    except ConfigError as exc:
        return fail(args, str(exc).removeprefix("invalid configuration: "))
    try:
        headers = parse_static_headers(args.headers or os.environ.get(Env.TARGET_STATIC_HEADERS) or "{}")
    except ValueError as exc:
        return fail(args, f"static headers {exc}")
    try:
        mapping = mapping_arg(args.mapping if args.mapping is not None else os.environ.get(Env.TARGET_MAPPING))
    except MappingError as exc:
        return fail(args, str(exc))
    system_id = args.system_id or os.environ.get(Env.TRAEDE_SYSTEM_ID) or "preview"
    shape = RequestShape(method=method, headers=headers, mapping=mapping, system_id=system_id)
    results = preview(args.paths, url, shape, system_id, args.reexport_since)
    references: list[ReferencePreview] = preview_references(args.answer, expression) if expression else []
    ok = all(r.ok for r in results) and all(r.ok for r in references)
    if args.json:
        data = {
            "ok": ok,
            "mapping": mapping.name if mapping else None,
            "requests": [r.as_dict() for r in results],
            "references": [r.as_dict() for r in references],
        }
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK if ok else EXIT_FAILURE
    err = Console(stderr=True)
    if results:
        for r in results:
            label = f"order {r.order_id}" if r.order_id is not None else "file"
            if not r.ok:
                err.print(f"[bold red]{label} ({escape(r.file)}): {escape(str(r.error))}[/]", highlight=False)
                continue
            console.print(f"[bold]{label}[/] ({escape(r.file)})", highlight=False)
            console.print(f"{r.method} {escape(r.url or '(no URL: give --url or set TARGET_URL)')}", highlight=False)
            for name, value in (r.headers or {}).items():
                console.print(escape(f"{name}: {value}"), highlight=False)
            print()
            print(json.dumps(r.body, indent=2, ensure_ascii=False))
            print()
        bad = sum(not r.ok for r in results)
        where = mapping.name if mapping else "no mapping: Traede's order unchanged"
        console.print(f"{len(results) - bad} request(s) built, {bad} failed ({where})", highlight=False, soft_wrap=True)
    for ref in references:
        # The answer's text, never Rich markup.
        if ref.ok:
            line = f"ERP reference from {escape(ref.answer)}: {escape(str(ref.reference))}"
            console.print(line, highlight=False, soft_wrap=True)
        else:
            why = f"no ERP reference from {escape(ref.answer)}: {escape(str(ref.problem))}"
            err.print(f"[bold red]{why}[/]", highlight=False, soft_wrap=True)
    return EXIT_OK if ok else EXIT_FAILURE


COMMAND = Command(
    "map",
    "Show the request each order would produce: method, URL, headers and body.",
    add_arguments,
    run,
    description="Runs the forwarder's own request building (mapping, URL placeholders, method, static\n"
    "headers) on ORDER files: a bare order, a list of orders, or an SQS event. Needs no AWS.\n"
    "Defaults come from the forwarder's variables TARGET_MAPPING, TARGET_URL, TARGET_METHOD\n"
    "and TARGET_STATIC_HEADERS. Secret headers are never shown. Exit 1 if any order fails.\n"
    "--answer FILE reads the ERP's reference (TARGET_REFERENCE, or --reference) from a saved\n"
    "answer, as the forwarder reads it from a live one; exit 1 if an answer gives none.",
    aws=False,
)
