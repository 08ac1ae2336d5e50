"""Fault injection (issue 10): every way a run can go wrong against a real engine or a real fake hook.

The live runs are independent (each its own engine or fake hook, Locust, folder), so the selected
tests' runs start together in the background (at most AT_ONCE at a time: the machine has 2 cores)
and each test reads its own with `fault_runs.result(NAME)`, which re-raises that run's assertion.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

TESTS = Path(__file__).resolve().parent.parent
for folder in (TESTS / "memsoak", Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from memsoak_procs import Scenarios, engine, procs  # noqa: E402,F401  (fixtures)

AT_ONCE = 3


def _selected(items: list) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is not None:
            name = marker.args[0]
            found[name] = item.module.SCENARIOS[name]
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): reads the background fault run NAME")


@pytest.fixture(scope="session")
def fault_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    named = _selected(request.session.items)
    folder = tmp_path_factory.mktemp("fault-runs")
    running = Scenarios(folder, at_once=min(max(1, len(named)), AT_ONCE))
    try:
        for name, scenario in named.items():
            running.start(name, scenario)
        yield running
    finally:
        running.close()
