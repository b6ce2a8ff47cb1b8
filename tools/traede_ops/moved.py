"""Commands that moved to the local emulation's own entry point, `traede-local`.

`traede-export run-local ...` and `traede-export reexport --local ...` still work: they run
`traede-local run ...` and `traede-local reexport ...` in a child process, after a note on stderr.
A child process, so that this package never imports the local emulation (and its extra).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence


def new_command(argv: Sequence[str]) -> list[str] | None:
    """The `traede-local` arguments for a command that moved, or None if it did not move."""
    if argv[:1] == ["run-local"]:
        return ["run", *argv[1:]]
    if argv[:1] == ["reexport"] and "--local" in argv[1:]:
        return ["reexport", *(a for a in argv[1:] if a != "--local")]
    return None


def forward(argv: Sequence[str]) -> int | None:
    """Run a moved command where it lives now and return its exit code; None if `argv` did not move."""
    command = new_command(argv)
    if command is None:
        return None
    print(f"note: this command is now `traede-local {command[0]}`; running it", file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "traede_local", *command])
