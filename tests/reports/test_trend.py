"""memsoak/reports/stats/trend.py: which slope test a window gets, and what that buys and guards against.

The bench (bench/verdict_synthetic.py) measures rates over thousands of series; these tests pin
the behaviour on a few dozen fixed seeds, fast enough for every run.
"""
from __future__ import annotations

import numpy as np
import pytest

import reports_synth as synth
from memsoak.reports.stats.trend import gls_ar1, ols_ar1, slope_test, trend_test

MB = synth.MB
ALPHA = 0.01
RATIO = 0.25


def _series(family: str, seed: int, t_s: np.ndarray, slope_mb_h: float = 0.0) -> np.ndarray:
    return (synth.clean(family, np.random.default_rng(seed), t_s) + slope_mb_h * t_s / 3600.0) * MB


@pytest.mark.parametrize("family, method", [("ar1", "gls_ar1"), ("white", "gls_ar1"),
                                            ("steps", "ols_ar1"), ("sawtooth", "ols_ar1")])
def test_gaussian_noise_gets_gls_and_jumpy_noise_the_conservative_test(family, method, hours4):
    y = _series(family, 3, hours4)
    fit, chosen, kurtosis = slope_test(hours4 / 3600.0, y)
    assert chosen == method, (family, kurtosis)
    assert (abs(kurtosis) <= 1.0) == (method == "gls_ar1")


def test_gls_finds_a_slow_leak_on_ar1_noise_that_the_inflated_ols_misses(hours4):
    """1.1 MB/h on AR(1) phi=0.99 in 4 h: the issue's "10x smaller than the original method" slope."""
    t_h = hours4 / 3600.0
    gls_hits = ols_hits = 0
    for seed in range(40):
        y = _series("ar1", 1000 + seed, hours4, 1.1)
        gls_hits += gls_ar1(t_h, y)[0].p_increasing < ALPHA
        ols_hits += ols_ar1(t_h, y).p_increasing < ALPHA
    assert gls_hits >= 35            # the bench measures ~95% on the whole window
    assert gls_hits > ols_hits


def test_gls_holds_its_level_on_clean_ar1_noise(hours4):
    t_h = hours4 / 3600.0
    alarms = sum(gls_ar1(t_h, _series("ar1", 5000 + seed, hours4))[0].p_increasing < ALPHA for seed in range(100))
    assert alarms <= 3


def test_a_smooth_warmup_curve_in_a_short_window_stays_on_the_conservative_test():
    """A clean 5-minute demo run's RSS: arenas still growing, a smooth concave rise of ~2 MB.

    Its innovations look Gaussian, but the window spans far less than one decorrelation time; GLS
    would call the curve a leak with p ~ 1e-39 (seen on a real run), the inflated OLS does not.
    """
    t_s = np.arange(224) * 1.0
    rng = np.random.default_rng(11)
    y = (300.0 + 2.6 * (1 - np.exp(-t_s / 260.0)) + rng.normal(0, 0.01, len(t_s))) * MB
    t_h = t_s / 3600.0
    assert gls_ar1(t_h, y)[0].p_increasing < 1e-6        # what the rule guards against
    fit, method, _ = slope_test(t_h, y)
    assert method == "ols_ar1"
    assert fit.p_increasing > ALPHA


def test_snapshot_shifts_keep_the_joint_fit(hours4):
    y = _series("ar1", 7, hours4)
    shifts = (hours4 >= hours4[len(hours4) // 2]).astype(float)[:, None]
    assert slope_test(hours4 / 3600.0, y, shifts)[1] == "ols_ar1_shifted"


def test_a_slow_leak_is_not_called_flattened_for_a_noisy_late_half(hours4):
    """The late half's own slope is noisy; only a late half significantly flatter is a plateau."""
    persisted = 0
    for seed in range(40):
        trend = trend_test(hours4, _series("ar1", 2000 + seed, hours4, 1.1), ALPHA, RATIO)
        assert trend.method == "gls_ar1"
        persisted += trend.persists
    assert persisted >= 39
