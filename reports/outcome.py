"""Outcomes of a run and their exit codes (distinct from Locust's own 0-3), with precedence.

The codes are the contract with CI and with the Locust plugin: see docs/CONTRACTS.md.
"""
from __future__ import annotations

PASS = "pass"
LEAK = "leak"
RSS_LIMIT = "rss_limit"
ENGINE_LOST = "engine_lost"
BAD_CONFIG = "bad_config"
REGRESSION = "regression"
INCONCLUSIVE = "inconclusive"   # growth beyond the floors, too short a run to tell a filling cache from a leak

EXIT_CODES: dict[str, int] = {
    PASS: 0,
    LEAK: 10,
    RSS_LIMIT: 11,
    ENGINE_LOST: 12,
    BAD_CONFIG: 13,
    REGRESSION: 14,
    INCONCLUSIVE: 15,
}

# When several hold, the first in this list wins: a dead engine explains everything after it.
PRECEDENCE: tuple[str, ...] = (ENGINE_LOST, RSS_LIMIT, LEAK, INCONCLUSIVE, PASS)


def exit_code(outcome: str) -> int:
    return EXIT_CODES[outcome]


def decide(*, engine_lost: bool, rss_limit: bool, leak: bool, inconclusive: bool = False) -> str:
    """The outcome of a run from what held, by precedence."""
    held = {ENGINE_LOST: engine_lost, RSS_LIMIT: rss_limit, LEAK: leak, INCONCLUSIVE: inconclusive, PASS: True}
    return next(name for name in PRECEDENCE if held[name])
