"""Shared fixtures: one moto server per session, a fresh local stack per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from traede_ops.local_stack import LocalOptions, LocalStack, start_moto


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = start_moto()
    yield os.environ["AWS_ENDPOINT_URL"]
    server.stop()


@pytest.fixture
def make_stack(moto_endpoint: str, tmp_path: Path) -> Iterator[object]:
    """`make_stack(orders=..., ...)` starts a LocalStack with its own queues, table and servers."""
    stacks: list[LocalStack] = []

    def make(**kwargs: object) -> LocalStack:
        kwargs.setdefault("store_dir", tmp_path / f"received-{len(stacks)}")
        stack = LocalStack(LocalOptions(**kwargs), moto_endpoint=moto_endpoint)  # type: ignore[arg-type]
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()
