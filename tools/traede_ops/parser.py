"""The `traede-export` argument parser, built from the commands in traede_ops.commands.

Each command brings its own options (`Command.add_arguments`); this module adds what they all
share: `--json`, `--help`, and for AWS commands the options that say which stack (traede_ops.where).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from traede_ops import where

DESCRIPTION = """`traede-export`: the operator's command line. Exit codes: 0 OK, 1 failure, 2 usage.

Every AWS command finds its resources from `--stack NAME` (the CloudFormation outputs) or from
explicit `--queue-url/--dlq-url/--table/--function`; `--endpoint-url` (or AWS_ENDPOINT_URL)
points it at a local endpoint such as moto. Output is for people; `--json` is for scripts.
"""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help, its own options, and what runs it (returns the exit code)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""  # more lines for `COMMAND --help`, after `help`
    aws: bool = True  # takes the where options (--stack, --queue-url, ..., --endpoint-url)


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser(commands: Iterable[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="traede-export", description=DESCRIPTION, formatter_class=Formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    aws_options = where.options()
    for command in commands:
        p = sub.add_parser(
            command.name,
            help=command.help,
            description=(command.help + "\n\n" + command.description).strip(),
            parents=[aws_options] if command.aws else [],
            formatter_class=Formatter,
        )
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        command.add_arguments(p)
        p.set_defaults(run=command.run, parser=p)
    return parser
