"""The `traede-export` commands, in the order `--help` lists them.

To add a command: write `commands/NAME.py` with `add_arguments(parser)`, `run(args) -> exit code`
and `COMMAND = Command(...)` (see status.py), then list it here. AWS commands find their stack
with `traede_ops.where.target(args)`; `traede_ops.output` prints tables or `--json`.
"""

from __future__ import annotations

from traede_ops.commands import map as map_  # `map` alone would hide the builtin here
from traede_ops.commands import order, pending, redrive, reexport, replay, status
from traede_ops.parser import Command

COMMANDS: tuple[Command, ...] = (
    map_.COMMAND,
    pending.COMMAND,
    replay.COMMAND,
    reexport.COMMAND,
    redrive.COMMAND,
    status.COMMAND,
    order.COMMAND,
)
