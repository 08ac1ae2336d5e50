"""Warm-up cut: the change point, and the tail of a fill that is still approaching its level."""
from __future__ import annotations

import numpy as np
import pytest

from memsoak.reports.verdict.analysis import SPECS, classify
from memsoak.reports.stats.warmup import TAIL_BIAS, TAU_MARGIN, fill_tail, find_warmup
import reports_synth as synth

MB = synth.MB


def _cut(t: np.ndarray, y: np.ndarray):
    return find_warmup(t, y, None, warmup_s=-1.0, event_s=None, max_fraction=0.5)


# Seeds on which the change point alone (cut at ~1540 s, 4-5 MB of the fill still to come) let a
# leak on top of the filling cache pass: the curvature left in the window read as autocorrelation.
@pytest.mark.parametrize("slope,seed", [(5.0, 2020007), (5.0, 2020011), (5.0, 2020016),
                                        (10.0, 2030003), (10.0, 2030008), (10.0, 2030011)])
def test_leak_on_a_filling_cache_is_found(slope, seed, hours4, settings):
    y = (synth.clean("plateau", np.random.default_rng(seed), hours4) + slope * hours4 / 3600) * MB
    verdict = classify(SPECS["rss"], hours4, y, settings)
    assert verdict.verdict == "leak", verdict.reason
    # 60 MB with a 10-minute time constant: what is left tilts the slope by < 0.5 s.e. after ~6.7 of
    # them, ~8.7 with the fitted time constant taken TAU_MARGIN longer.
    assert verdict.warmup.method == "change_point" and 4800 <= verdict.warmup.end_s <= 6000
    assert "exponential approach" in verdict.warmup.detail and "time constant" in verdict.warmup.detail


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_clean_filling_cache_is_cut_after_its_tail_and_never_leaks(seed, hours4, settings):
    y = synth.clean("plateau", np.random.default_rng(seed), hours4) * MB
    verdict = classify(SPECS["rss"], hours4, y, settings)
    assert verdict.verdict in ("pass", "plateau"), verdict.reason
    assert 4800 <= verdict.warmup.end_s <= 6000, verdict.warmup.detail


def test_tail_time_constant_and_amplitude_are_recovered():
    t = np.arange(2880) * 5.0
    y = 200 + 60 * (1 - np.exp(-t / 600.0)) + np.random.default_rng(2).normal(0, 0.5, len(t))
    tail = fill_tail(t, y, 1500.0)
    assert tail is not None
    assert tail.tau_s == pytest.approx(600, rel=0.15)
    assert tail.amplitude == pytest.approx(60 * np.exp(-2.5), rel=0.15)
    assert tail.noise == pytest.approx(0.5, rel=0.1)
    # The tail left at the cut, its time constant taken TAU_MARGIN longer, moves the OLS slope of the
    # rest by at most TAIL_BIAS standard errors (white noise), and one sample earlier by more.
    def bias_in_se(cut: float) -> float:
        x = t[t >= cut]
        left = -tail.amplitude * np.exp(-(x - 1500.0) / (tail.tau_s * TAU_MARGIN))
        xc = x - x.mean()
        return float(xc @ left / np.sqrt(xc @ xc) / tail.noise)
    assert bias_in_se(tail.cut_s) <= TAIL_BIAS < bias_in_se(tail.cut_s - 5.0)
    assert tail.left == pytest.approx(tail.amplitude * np.exp(-(tail.cut_s - 1500.0) / tail.tau_s))


def test_a_ramp_that_stops_dead_has_no_tail(hours4):
    y = 150 + np.minimum(hours4 / 600.0, 1.0) * 80 + np.random.default_rng(4).normal(0, 0.4, len(hours4))
    cut = _cut(hours4, y)
    assert cut.method == "change_point" and 400 <= cut.end_s <= 900 and "exponential" not in cut.detail
    # Over the whole warm-up the broken line beats an exponential approach, and after it, no curve.
    assert fill_tail(hours4, y, cut.end_s, origin=0.0) is None


@pytest.mark.parametrize("seed", range(3))
def test_under_slow_noise_the_tail_is_pinned_by_the_whole_fill(seed, hours4):
    # After the break, AR(1) noise hides what is left of a 60 MB, 20-minute fill; its full rise
    # from t=0 does not, and the cut moves on past the break (the trend test's GLS reads a slow
    # tail's rise: with the break alone, 28% of such clean caches were called leaks, 50 series).
    y = 200 + 60 * (1 - np.exp(-hours4 / 1200.0)) + synth.ar1(np.random.default_rng(seed), len(hours4), 0.99, 0.15)
    cut = _cut(hours4, y)
    assert "fitted from t=0s" in cut.detail, cut.detail
    brk = float(cut.detail.split("t=")[1].split("s")[0])
    tail = fill_tail(hours4, y, brk, origin=0.0)
    assert tail is not None and tail.fitted_from == 0.0 and tail.tau_s == pytest.approx(1200, rel=0.3)
    assert cut.end_s > brk + 1200


@pytest.mark.parametrize("seed", range(10))
def test_slow_noise_after_a_ramp_is_not_taken_for_a_tail(seed, hours4):
    # AR(1) noise (phi 0.99) bends a line as easily as a fill does; its "tail" must not count.
    y = 150 + np.minimum(hours4 / 600.0, 1.0) * 80 + synth.ar1(np.random.default_rng(seed), len(hours4), 0.99, 0.15)
    assert fill_tail(hours4, y, 700.0) is None


def test_a_slow_fill_is_cut_no_further_than_the_max_fraction(hours4):
    # 120 MB with a 20-minute time constant: its tail outlasts half the run; the cap holds and says so.
    y = 200 + 120 * (1 - np.exp(-hours4 / 1200.0)) + np.random.default_rng(5).normal(0, 0.5, len(hours4))
    cut = _cut(hours4, y)
    assert cut.method == "change_point" and cut.end_s == pytest.approx(0.5 * hours4[-1])
    assert "warmup_max_fraction" in cut.detail


def test_flat_or_too_short_series_have_no_tail():
    t = np.arange(100) * 5.0
    assert fill_tail(t, np.full(len(t), 100.0), 0.0) is None
    assert fill_tail(t[:8], np.arange(8.0), 0.0) is None


# Seeds of bench/verdict_synthetic.py --issue9 (rw_ar1 at 1.1 MB/h) that a chance early rise cut by
# 20-120 minutes under the old break rule (rise > 3 noise sd), each then passing or a plateau.
@pytest.mark.parametrize("seed", [3010004, 3010084, 3010100, 3010119])
def test_a_leak_under_slow_noise_is_not_cut_at_a_chance_early_rise(seed, hours4, settings):
    y = synth.leaky("rw_ar1", np.random.default_rng(seed), hours4, 1.1) * MB
    verdict = classify(SPECS["rss"], hours4, y, settings)
    assert verdict.warmup.method == "none", verdict.warmup.detail
    assert verdict.verdict == "leak", verdict.reason
