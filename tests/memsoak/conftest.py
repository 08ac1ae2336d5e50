"""Fixtures of the Locust-side tests (defined in memsoak_procs.py, shared with tests/locustfiles).

Long real runs go in the background and the tests that read them run last, so their waiting
overlaps the other tests instead of adding to them:
- the two-minute clean acceptance soak (started by tests/conftest.py with the first Locust-side
  test, or here at the latest; its test runs last of all);
- the background runs of the tests marked `@pytest.mark.scenario(NAME)` (NAME in their module's
  SCENARIOS: name -> scenario, an independent engine + Locust run, see memsoak_procs.Scenarios),
  all started together with the first test here, only those of selected tests; such a test reads
  its run with `plugin_runs.result(NAME)` and runs after the other tests of this directory.
"""
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from memsoak_procs import CLEAN_TEST, Scenarios, clean_demo, engine, procs, scenarios  # noqa: F401

HERE = Path(__file__).resolve().parent


def _here(item: pytest.Item) -> bool:
    return HERE in item.path.resolve().parents


def _reads_scenarios(item: pytest.Item) -> bool:
    return _here(item) and item.get_closest_marker("scenario") is not None


def pytest_collection_modifyitems(items: list) -> None:
    # Within this directory's block: tests that only read background runs go after the others.
    positions = [index for index, item in enumerate(items) if _here(item) and item.name != CLEAN_TEST]
    block = [items[index] for index in positions]
    ordered = [item for item in block if not _reads_scenarios(item)] + \
              [item for item in block if _reads_scenarios(item)]
    for index, item in zip(positions, ordered):
        items[index] = item
    last = [item for item in items if item.name == CLEAN_TEST]
    if last:
        items[:] = [item for item in items if item.name != CLEAN_TEST] + last


def _selected_scenarios(items: list) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for item in sorted((item for item in items if _reads_scenarios(item)), key=lambda item: item.nodeid):
        name = item.get_closest_marker("scenario").args[0]
        found[name] = item.module.SCENARIOS[name]
    return found


@pytest.fixture(scope="session")
def plugin_runs(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    with scenarios(tmp_path_factory.mktemp("plugin-runs"),
                   **_selected_scenarios(request.session.items)) as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def _background(request: pytest.FixtureRequest) -> None:
    if any(item.name == CLEAN_TEST for item in request.session.items):
        request.getfixturevalue("clean_demo")
    if any(_reads_scenarios(item) for item in request.session.items):
        request.getfixturevalue("plugin_runs")
