"""compare(): a leaky candidate against a clean base is a regression; two clean runs are not."""
from __future__ import annotations

import numpy as np

from memsoak import reports
import reports_synth as synth


def _report(tmp_path, name, seed, slope_mb_per_h):
    t = np.arange(1440) * 5.0
    rss = synth.clean("ar1", np.random.default_rng(seed), t) + slope_mb_per_h * t / 3600
    run_dir = synth.write_run(tmp_path / name, synth.make_rows(t, rss))
    return reports.analyze(reports.load_run(run_dir))


def test_leaky_candidate_is_a_regression(tmp_path):
    comparison = reports.compare(_report(tmp_path, "base", 1, 0.0), _report(tmp_path, "cand", 2, 8.0))
    assert (comparison.outcome, comparison.exit_code) == ("regression", 14)
    rss = next(d for d in comparison.deltas if d.name == "rss")
    assert rss.regression and rss.diff_ci_low > 0 and rss.diff_ci_low < 8 * synth.MB < rss.diff_ci_high
    assert "messages" in rss.per_op
    assert "REGRESSION" in reports.render_comparison(comparison)


def test_two_clean_runs_pass(tmp_path):
    comparison = reports.compare(_report(tmp_path, "base", 3, 0.0), _report(tmp_path, "cand", 4, 0.0))
    assert (comparison.outcome, comparison.exit_code) == ("pass", 0)
    assert not any(d.regression for d in comparison.deltas)


def test_growth_below_single_run_floors_is_a_regression_against_a_flat_base(tmp_path):
    def heap_report(name, seed, growth_mb):
        t = np.arange(240) * 1.0
        rng = np.random.default_rng(seed)
        rss = synth.clean("white", rng, t)
        heap = 20 + growth_mb * t / 240 + rng.normal(0, 0.02, len(t))
        run_dir = synth.write_run(tmp_path / name, synth.make_rows(t, rss, heap_mb=heap))
        return reports.analyze(reports.load_run(run_dir))

    base, flat, slow = heap_report("base", 1, 0.0), heap_report("flat", 2, 0.0), heap_report("slow", 3, 0.2)
    assert slow.signal("heap").verdict == "pass"            # 0.2 MB is under heap_min_growth_mb
    assert reports.compare(base, slow).exit_code == 14
    assert reports.compare(base, flat).exit_code == 0


def _walk_heap_report(tmp_path, name, seed, per_s_mb):
    """5 minutes at 1 s: a heap that grows with random traffic (every increment >= 0, a random walk
    with drift) under garbage that comes and goes: the issue's lru_cache shape when per_s_mb > 0."""
    t = np.arange(300) * 1.0
    rng = np.random.default_rng(seed)
    rate = np.maximum(1 + synth.ar1(rng, len(t), 0.98, 0.25), 0)        # traffic that wanders
    heap = 30 + per_s_mb * np.cumsum(rate) + synth.ar1(rng, len(t), 0.97, 0.3) + 2.0 * np.sin(t / 40)
    rss = 200 + 1.2 * (heap - 30) + rng.normal(0, 0.3, len(t))
    run_dir = synth.write_run(tmp_path / name, synth.make_rows(t, rss, heap_mb=heap))
    return reports.analyze(reports.load_run(run_dir))


def test_a_random_walk_leak_is_a_regression_against_a_clean_run(tmp_path):
    # Issue 9: compare passed the lru_cache run ("+861 MB/h [-699, +2,420]", exit 0) because the
    # candidate's per-signal verdict passed; the verdict now models the walk, and compare inherits it.
    base, other = _walk_heap_report(tmp_path, "base", 11, 0.0), _walk_heap_report(tmp_path, "clean2", 12, 0.0)
    leak = _walk_heap_report(tmp_path, "leak", 13, 0.1)
    heap = leak.signal("heap")
    assert heap.verdict == "leak" and "drift" in heap.evidence, heap.reason
    assert heap.trend.p_value > 0.01          # the slope test alone would have passed it
    assert reports.compare(base, leak).exit_code == 14
    assert reports.compare(base, other).exit_code == 0, reports.render_comparison(reports.compare(base, other))


def _sampled_heap_report(tmp_path, name, seed, growth_mb):
    """5 minutes at 1 s in sampled mode: the heap estimate moves in whole sampling means (512 KiB)."""
    t = np.arange(300) * 1.0
    rng = np.random.default_rng(seed)
    mean_mb = 0.5
    heap = 30 + mean_mb * np.round((growth_mb * t / t[-1] + rng.normal(0, 0.3, len(t))) / mean_mb)
    rss = synth.clean("white", rng, t)
    health = {"alloc_mode": "sampled", "config": {"sample_bytes": int(mean_mb * synth.MB)}}
    run_dir = synth.write_run(tmp_path / name, synth.make_rows(t, rss, heap_mb=heap), health=health)
    return reports.analyze(reports.load_run(run_dir))


def test_a_sampled_heap_difference_under_the_samplers_resolution_is_not_a_regression(tmp_path):
    # Issue 9: two clean 5-minute runs' sampled heaps differed by +24 MB/h [+15.5, +32.9], 1.6 MB
    # over the window, and compare said REGRESSION (exit 14); the sampler's resolution is 2 MB here.
    base, wobble = _sampled_heap_report(tmp_path, "base", 21, 0.0), _sampled_heap_report(tmp_path, "wobble", 22, 1.5)
    heap = wobble.signal("heap")
    assert heap.resolution == 4 * 0.5 * synth.MB and heap.verdict == "pass", heap.reason
    delta = next(d for d in reports.compare(base, wobble).deltas if d.name == "heap")
    assert delta.diff_ci_low > 0 and not delta.regression and "resolution" in delta.reason, delta.reason
    assert reports.compare(base, wobble).exit_code == 0
    leak = _sampled_heap_report(tmp_path, "leak", 23, 8.0)
    assert reports.compare(base, leak).exit_code == 14
