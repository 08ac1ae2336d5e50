"""Per-operation rates and which-action attribution on synthetic rows."""
from __future__ import annotations

import numpy as np

from memsoak.reports.stats.rates import op_series, per_op_rates, project, which_action
from memsoak.reports.settings import resolve


def _swept_counts(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Three phases with different mixes (the mix-sweep shape): counts are not collinear."""
    phase = np.arange(n) * 3 // n
    messages = np.cumsum(np.choose(phase, [8, 2, 5]) + rng.poisson(1, n))
    sessions = np.cumsum(np.choose(phase, [1, 4, 2]) + rng.poisson(0.3, n))
    reads = np.cumsum(np.choose(phase, [2, 2, 6]) + rng.poisson(0.5, n))
    return {"messages": messages.astype(float), "sessions_created": sessions.astype(float),
            "session_reads": reads.astype(float)}


def test_per_message_rate_recovers_planted_bytes_within_ci():
    rng = np.random.default_rng(21)
    n = 1200
    messages = np.cumsum(rng.poisson(6, n)).astype(float)
    y = 200e6 + 640.0 * messages + rng.normal(0, 20e3, n)    # 640 B per message
    rate = next(r for r in per_op_rates(y, {"messages": messages}) if r.op == "messages")
    assert rate.ci_low < 640.0 < rate.ci_high
    assert rate.p_value < 0.01


def test_which_action_finds_the_leaking_action_on_a_swept_mix():
    rng = np.random.default_rng(22)
    counts = _swept_counts(1500, rng)
    y = 150e6 + 2048.0 * counts["sessions_created"] + rng.normal(0, 30e3, 1500)
    found = which_action(y, counts, alpha=0.01)
    assert found.identifiable, found.reason
    assert found.leaking == ["sessions_created"]
    top = found.actions[0]
    assert top.op == "sessions_created" and top.ci_low < 2048.0 < top.ci_high


def test_which_action_says_not_identifiable_on_collinear_counts():
    rng = np.random.default_rng(23)
    n = 1000
    base = np.cumsum(rng.poisson(5, n)).astype(float)
    counts = {"messages": base * 5, "sessions_created": base + rng.normal(0, 0.5, n)}
    y = 150e6 + 100.0 * counts["messages"] + rng.normal(0, 10e3, n)
    found = which_action(y, counts, alpha=0.01)
    assert not found.identifiable
    assert "collinear" in found.reason and found.actions == []


def test_op_series_reads_ops_and_requests_and_drops_constant_ones():
    rows = [{"ops": {"messages": i * 3, "ws_messages": 0}, "requests_total": i * 4} for i in range(10)]
    series = op_series(rows)
    assert set(series) == {"messages", "requests"}


def test_projection_at_observed_and_production_rates_and_time_to_limit():
    settings = resolve({"prod_messages_per_hour": 1000.0})
    rates = per_op_rates(np.arange(100) * 500.0 + np.random.default_rng(1).normal(0, 1, 100),
                         {"messages": np.arange(100, dtype=float)})
    proj = project(2e6, rates, settings, level_now=500e6, limit=512e6)
    assert proj.at_observed_rate == 48e6
    (label, growth), = proj.at_production.items()
    assert label.startswith("messages at 1000") and abs(growth - 500 * 1000 * 24) < 0.01 * growth
    assert abs(proj.time_to_limit_h - 6.0) < 1e-9


def test_actions_in_lockstep_are_folded_and_the_rest_stays_identifiable():
    rng = np.random.default_rng(24)
    counts = _swept_counts(1500, rng)
    # A churn user ends every session it creates, a moment later: the two counts move together.
    counts["sessions_deleted"] = np.maximum(counts["sessions_created"] - 2 - rng.poisson(0.2, 1500), 0)
    y = 150e6 + 1024.0 * counts["messages"] + rng.normal(0, 30e3, 1500)
    found = which_action(y, counts, alpha=0.01)
    assert found.identifiable, found.reason
    assert "sessions_deleted moves with sessions_created" in found.reason
    assert found.leaking == ["messages"]
    assert "sessions_deleted" not in {a.op for a in found.actions}
