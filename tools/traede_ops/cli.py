"""`traede-export`, the operator's command line: parse, run the command, map errors to exit codes.

The commands live in traede_ops.commands (one module each), the parser in traede_ops.parser.
This package stands on the layer (traede_export) alone: the local emulation has its own entry
point, `traede-local` (traede_local.cli).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from traede_export.redact import masked_streams
from traede_ops import moved, ops
from traede_ops.commands import COMMANDS
from traede_ops.output import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from traede_ops.parser import build_parser

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    forwarded = moved.forward(argv)
    if forwarded is not None:
        return forwarded
    args = build_parser(COMMANDS).parse_args(argv)
    if getattr(args, "endpoint_url", None):
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    # A secret this process knows (e.g. read from the stack's Secrets Manager) never prints: see redact.py.
    with masked_streams():
        try:
            return int(args.run(args))
        except ops.OpsError as exc:
            return fail(args, str(exc))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            operation = getattr(exc, "operation_name", "AWS call")
            return fail(args, f"{operation} failed: {error.get('Code')}: {error.get('Message', exc)}")
        except BotoCoreError as exc:
            return fail(args, str(exc))
        except KeyboardInterrupt:
            return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
