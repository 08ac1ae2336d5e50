"""Outcomes of a run and their exit codes (distinct from Locust's own 0-3), with precedence.

Every code memsoak exits with is defined in memsoak/contract.py, and nowhere else (this module
re-exports them with their titles and precedence); the README's exit-code table and docs/CONTRACTS.md
copy that table. A run that is not evidence never exits 0: each way a run can fail
to be evidence is an outcome of its own.
"""
from __future__ import annotations

# The outcomes and their codes are the run's contract with CI scripts: defined in memsoak/contract.py.
from memsoak.contract import (BAD_CONFIG, ENGINE_LOST, EXIT_CODES, INCONCLUSIVE, INSUFFICIENT,  # noqa: F401
                              INTERRUPTED, INVALID_LOAD, LEAK, MEASUREMENT_FAILED, PASS, REGRESSION, RSS_LIMIT)

# Locust's own exit codes, for the README table: memsoak's codes never collide with them.
LOCUST_CODES: dict[int, str] = {
    0: "Locust: no request failed (memsoak not loaded)",
    1: "Locust: some requests failed (--exit-code-on-error)",
    2: "Locust: unexpected error (a greenlet raised)",
    3: "locust-plugins checks failed",
}

# When several hold, the first in this list wins. A run ended for its configuration (every request
# refused 401/403 at start) measured nothing of the engine; a dead engine explains everything after it; a
# proven leak wins over every reason the run is not otherwise evidence (the growth was measured);
# then what invalidates the measurement, then the load, then the run's length.
PRECEDENCE: tuple[str, ...] = (BAD_CONFIG, ENGINE_LOST, RSS_LIMIT, LEAK, MEASUREMENT_FAILED, INVALID_LOAD,
                               INTERRUPTED, INCONCLUSIVE, INSUFFICIENT, PASS)

TITLES: dict[str, str] = {
    PASS: "PASS",
    LEAK: "LEAK",
    RSS_LIMIT: "RSS LIMIT",
    ENGINE_LOST: "ENGINE LOST",
    BAD_CONFIG: "BAD CONFIGURATION",
    REGRESSION: "REGRESSION",
    INVALID_LOAD: "INVALID LOAD",
    INTERRUPTED: "INTERRUPTED",
    INCONCLUSIVE: "INCONCLUSIVE",
    INSUFFICIENT: "INSUFFICIENT EVIDENCE",
    MEASUREMENT_FAILED: "MEASUREMENT FAILED",
}


def exit_code(outcome: str) -> int:
    return EXIT_CODES[outcome]


def title(outcome: str) -> str:
    return TITLES.get(outcome, outcome.replace("_", " ").upper())


def decide(**held: bool) -> str:
    """The outcome of a run from what held (keyword = outcome name), by precedence."""
    unknown = set(held) - set(PRECEDENCE)
    if unknown:
        raise KeyError(f"unknown outcome(s) {sorted(unknown)}")
    return next(name for name in PRECEDENCE if name == PASS or held.get(name))
