"""Fixtures of the Locust-side tests (defined in memsoak_procs.py, shared with tests/locustfiles).

The two-minute clean acceptance soak starts in the background with the first test here and its
test runs last, so its two minutes overlap the other tests instead of adding to them.
"""
import pytest

from memsoak_procs import CLEAN_TEST, clean_demo, engine, procs  # noqa: F401


def pytest_collection_modifyitems(items: list) -> None:
    last = [item for item in items if item.name == CLEAN_TEST]
    if last:
        items[:] = [item for item in items if item.name != CLEAN_TEST] + last


@pytest.fixture(scope="session", autouse=True)
def _clean_demo_in_background(request: pytest.FixtureRequest) -> None:
    if any(item.name == CLEAN_TEST for item in request.session.items):
        request.getfixturevalue("clean_demo")
