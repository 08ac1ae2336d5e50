"""Fixtures of the Locust-side tests (defined in memsoak_procs.py, shared with tests/locustfiles and
tests/faults).

Long real runs are `@background_run` fixtures of their test modules: each is started in a thread of
its own when first needed, and the test that uses it waits for its `result()` and asserts on it.
So that their waiting overlaps the other tests here instead of adding to them, every run a selected
test of this directory uses is started together with the first test of this directory.
"""
from pathlib import Path
from typing import Iterator

import pytest

from memsoak_procs import engine, procs, background_runs  # noqa: F401  (fixtures)


@pytest.fixture(scope="session", autouse=True)
def _background_runs_of_this_directory(request: pytest.FixtureRequest) -> Iterator[None]:
    with background_runs(request, Path(__file__).resolve().parent):
        yield
