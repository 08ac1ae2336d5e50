"""Fault injection (issue 10): every way a run can go wrong against a real engine or a real fake hook.

The live runs are independent (each its own engine or fake hook, Locust, folder): each is a
`@background_run` fixture of test_faults.py, all started together with the first test here (at most
3 at a time: the machine has 2 cores), and each test waits for its own run's `result()` and holds
the assertions on it.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

TESTS = Path(__file__).resolve().parent.parent
for folder in (TESTS / "memsoak", Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from memsoak_procs import engine, procs, background_runs  # noqa: E402,F401  (fixtures)


@pytest.fixture(scope="session", autouse=True)
def _background_runs_of_this_directory(request: pytest.FixtureRequest) -> Iterator[None]:
    with background_runs(request, Path(__file__).resolve().parent):
        yield
