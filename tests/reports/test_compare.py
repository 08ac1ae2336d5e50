"""compare(): a leaky candidate against a clean base is a regression; two clean runs are not."""
from __future__ import annotations

import numpy as np

import reports
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
