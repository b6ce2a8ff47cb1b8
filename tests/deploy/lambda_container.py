"""One Lambda "container": a process of its own running one deployed function, behind Lambda's Invoke API.

Run as `python lambda_container.py SPEC_JSON LOG_FILE` with the environment Lambda would give the
function (its deployed variables plus the credentials of its role). It prints its endpoint on
stdout, then sends the handler's own output (Powertools logs) to LOG_FILE and serves until
stdin closes. A process per function, as in Lambda: each one's boto3 session and credentials
are its own (the package caches one session per process, so two functions in one process
would share the first one's credentials).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from traede_local.lambda_endpoint import LambdaEndpoint
from traede_local.lambda_runtime import LocalFunction
from traede_local.template import FunctionSpec


def main() -> None:
    spec = json.loads(sys.argv[1])
    module, function = spec["handler"].rsplit(".", 1)
    local = LocalFunction(
        FunctionSpec(
            logical_id=spec["name"],
            code_dir=Path(spec["code_dir"]),
            module=module,
            function=function,
            environment={},  # the process environment is already the function's
            timeout=int(spec["timeout"]),
            events={},
        ),
        overrides={"AWS_LAMBDA_FUNCTION_NAME": spec["name"]},
    )
    endpoint = LambdaEndpoint({spec["name"]: local})
    print(endpoint.start(), flush=True)
    log = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)  # the handler's stdout (its logs) from here on
    sys.stdin.read()
    endpoint.stop()


if __name__ == "__main__":
    main()
