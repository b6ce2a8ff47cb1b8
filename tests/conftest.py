"""Shared fixtures: one moto server and one DynamoDB Local per session, a fresh local stack per test.

The ledger runs on DynamoDB Local (AWS's own engine: atomic conditional writes, real validation);
everything else (SQS, Secrets Manager, CloudFormation, ...) on moto.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Unpack

import pytest

from traede_local.dynamodb_local import ENDPOINT_VARIABLE, start_dynamodb_local
from traede_local.local_stack import LocalOptions, LocalStack, MakeStack, StackOptions, start_moto


@pytest.fixture(scope="session")
def moto_endpoint(dynamodb_endpoint: str) -> Iterator[str]:
    server = start_moto()
    yield os.environ["AWS_ENDPOINT_URL"]
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    server = start_dynamodb_local()
    yield server.endpoint
    server.stop()
    os.environ.pop(ENDPOINT_VARIABLE, None)


@pytest.fixture
def make_stack(moto_endpoint: str, dynamodb_endpoint: str, tmp_path: Path) -> Iterator[MakeStack]:
    """`make_stack(orders=..., ...)` starts a LocalStack with its own queues, table and servers."""
    stacks: list[LocalStack] = []

    def make(**kwargs: Unpack[StackOptions]) -> LocalStack:
        kwargs.setdefault("store_dir", tmp_path / f"received-{len(stacks)}")
        options = LocalOptions(**kwargs)
        stack = LocalStack(options, moto_endpoint=moto_endpoint, dynamodb_endpoint=dynamodb_endpoint)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()
