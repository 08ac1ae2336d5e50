"""Fixtures of the demo engine's tests: a database per storage kind and engines started for real."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Iterator

import pytest

from demo_engine_procs import STORAGES, RunningEngine, database_for, engine_process


@pytest.fixture(scope="module", params=STORAGES)
def engine(request: pytest.FixtureRequest) -> Iterator[RunningEngine]:
    """One engine per test module and storage kind, on its own fresh database."""
    with ExitStack() as stack:
        url = database_for(request, stack)
        yield stack.enter_context(engine_process(["--database-url", url, "--llm-latency-ms", "5"]))


@pytest.fixture(params=STORAGES)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh DATABASE_URL for one test, for each storage kind."""
    with ExitStack() as stack:
        yield database_for(request, stack)


@pytest.fixture
def launch() -> Iterator[Callable[..., RunningEngine]]:
    """Start engines inside a test; all of them are stopped when it ends."""
    with ExitStack() as stack:
        def start(*args: str, **kwargs: Any) -> RunningEngine:
            return stack.enter_context(engine_process(list(args), **kwargs))

        yield start
