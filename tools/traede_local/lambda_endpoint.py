"""Lambda's Invoke API on loopback, running the real handlers in-process.

`sam local start-lambda` offers this with Docker; this gives the same endpoint without it, so
boto3's real Lambda client (pointed here with `AWS_ENDPOINT_URL_LAMBDA`) can invoke the
poller locally, as `traede-export reexport` does against AWS.
"""

from __future__ import annotations

import json
import re

from traede_local.faults import LocalServer, Reply, Request
from traede_local.lambda_runtime import LocalFunction

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


class LambdaEndpoint(LocalServer):
    def __init__(self, functions: dict[str, LocalFunction]) -> None:
        super().__init__()
        self.functions = functions

    def dispatch(self, request: Request) -> Reply:
        match = INVOKE_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(404, {"Type": "User", "message": f"no route {request.method} {request.path}"})
        function = self.functions.get(match.group(1))
        if function is None:
            return Reply(
                404,
                {"Type": "User", "message": f"Function not found: {match.group(1)}"},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        try:
            result = function.invoke(json.loads(request.body or b"{}"))
        except Exception as exc:  # Lambda reports a handler's exception in the payload
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            return Reply(200, error, {"X-Amz-Function-Error": "Unhandled"})
        return Reply(200, result)
