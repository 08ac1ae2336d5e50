"""The engine's in-memory state stays bounded, and the duplicate guard and rate limit decide right."""
from __future__ import annotations

import pytest

from memsoak.demo_engine.sessions import AgentPool, AriaRateLimiter, RateLimiter, SessionManager


def test_live_sessions_are_an_lru_with_a_bound() -> None:
    manager = SessionManager(max_live=3, context_messages=4, duplicate_window_s=5)
    for index in range(5):
        manager.track(f"s{index}", "agent", "model")
    assert len(manager) == 3 and manager.get("s0") is None and manager.get("s1") is None
    manager.get("s2")  # touched: now s3 is the oldest
    manager.track("s5", "agent", "model")
    assert manager.get("s3") is None and manager.get("s2") is not None
    manager.drop("s2")
    assert manager.get("s2") is None


def test_context_window_slides() -> None:
    live = SessionManager(10, context_messages=4, duplicate_window_s=5).track("s", "a", "m", ["h1", "h2"])
    for index in range(10):
        live.context.append(f"m{index}")
    assert list(live.context) == ["m6", "m7", "m8", "m9"]


def test_identical_content_is_a_duplicate_only_within_the_window() -> None:
    manager = SessionManager(10, 4, duplicate_window_s=5)
    live = manager.track("s", "a", "m")
    assert manager.seconds_since_identical(live, "hi", now=100.0) is None
    assert manager.seconds_since_identical(live, "hi", now=102.0) == 2.0
    assert manager.seconds_since_identical(live, "other", now=102.0) is None
    assert manager.seconds_since_identical(live, "hi", now=106.0) is None  # window passed
    manager.forget(live, "hi")
    assert manager.seconds_since_identical(live, "hi", now=106.5) is None  # failed message: retry allowed


def test_duplicate_memory_is_bounded_under_a_flood() -> None:
    manager = SessionManager(10, 4, duplicate_window_s=3600)
    live = manager.track("s", "a", "m")
    for index in range(1000):
        manager.seconds_since_identical(live, f"m{index}", now=float(index) / 1000)
    assert len(live.recent) <= 256


def test_agent_pool_bounds_agents_and_history() -> None:
    pool = AgentPool(history=5, max_agents=3)
    for index in range(100):
        pool.record(f"agent-{index % 7}", float(index))
    assert len(pool) == 3
    assert all(len(scores) <= 5 for scores in pool._scores.values())


def test_rate_limiter_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.retry_after("c", now=0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.retry_after("c", now=0.0)
    assert wait is not None and 0 < wait <= 0.5
    assert limiter.retry_after("other", now=0.0) is None  # per client
    assert limiter.retry_after("c", now=0.6) is None  # 1.2 tokens refilled
    assert RateLimiter(rate=0, burst=1).retry_after("c") is None  # 0 = off


def test_rate_limiter_forgets_the_oldest_clients() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=10)
    for index in range(100):
        limiter.retry_after(f"client-{index}", now=0.0)
    assert len(limiter._buckets) == 10


def test_idle_sessions_leave_memory() -> None:
    manager = SessionManager(max_live=100, context_messages=4, duplicate_window_s=5, idle_s=60)
    manager.track("old", "a", "m", now=0.0)
    manager.track("used", "a", "m", now=0.0)
    assert manager.get("used", now=50.0) is not None  # touched at 50
    manager.track("new", "a", "m", now=100.0)
    assert manager.get("old", now=100.0) is None
    assert manager.get("used", now=100.0) is not None and len(manager) == 2


def test_aria_limiter_windows_block_for_arias_durations() -> None:
    limiter = AriaRateLimiter(burst=3, per_minute=5, per_hour=7)
    assert [limiter.refusal("a", now=t) for t in (0.0, 0.1, 0.2)] == [None] * 3
    assert limiter.refusal("a", now=0.3) == ("burst_exceeded", 15.0)
    assert limiter.refusal("a", now=15.2) == ("rate_limited", pytest.approx(0.1))
    assert limiter.refusal("b", now=0.4) is None  # per client
    assert [limiter.refusal("a", now=t) for t in (15.4, 21.0)] == [None, None]  # refusals were not counted
    assert limiter.refusal("a", now=22.0) == ("rpm_exceeded", 30.0)
    assert [limiter.refusal("a", now=t) for t in (70.0, 71.0)] == [None, None]  # 7 in the hour
    assert limiter.refusal("a", now=72.0) == ("rph_exceeded", 300.0)
    assert limiter.refusal("a", now=371.0) == ("rate_limited", pytest.approx(1.0))
    assert limiter.refusal("a", now=372.5) == ("rph_exceeded", 300.0)  # still 7 in the last hour
    assert limiter.refusal("a", now=3600.5) is None  # the first ones left the hour


def test_aria_limiter_remembers_a_bounded_number_of_clients() -> None:
    limiter = AriaRateLimiter(burst=1, per_minute=10, per_hour=10, max_clients=3)
    for n in range(10):
        assert limiter.refusal(f"client-{n}", now=float(n)) is None
    assert len(limiter) == 3
    assert limiter.refusal("client-9", now=9.5) == ("burst_exceeded", 15.0)  # the recent one is kept
