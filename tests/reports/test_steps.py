"""Steps caused by the harness's own tracemalloc snapshots are removed, leaks are not."""
from __future__ import annotations

import numpy as np

from memsoak import reports
import reports_synth as synth
from memsoak.reports.verdict.analysis import SPECS, classify
from memsoak.reports.settings import resolve
from memsoak.reports.stats.steps import remove_snapshot_steps

MB = synth.MB
SNAPSHOTS = [600.0, 1200.0, 1800.0, 2400.0]


def _series(slope_mb_per_h: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(720) * 5.0     # 1 h
    y = synth.clean("white", np.random.default_rng(seed), t) + slope_mb_per_h * t / 3600
    for ts in SNAPSHOTS:         # each snapshot leaves 20 MB of RSS behind, from a few seconds before it
        y = y + 20.0 * (t >= ts - 3)
    return t, y


def test_remove_snapshot_steps_recovers_each_step():
    t, y = _series(0.0, 1)
    removal = remove_snapshot_steps(t, y * MB, SNAPSHOTS, guard_s=10.0)
    assert [round(step / MB) for _, step in removal.steps] == [20, 20, 20, 20]
    assert not removal.keep[(t > 595) & (t < 605)].any()
    assert np.ptp(removal.adjusted[removal.keep]) / MB < 5


def test_guard_zero_keeps_the_raw_series():
    t, y = _series(0.0, 1)
    removal = remove_snapshot_steps(t, y, SNAPSHOTS, guard_s=0.0)
    assert removal.steps == [] and removal.keep.all()


def _run(tmp_path, name, slope, guard=None):
    t, y = _series(slope, 3)
    events = [{"type": "snapshot", "t": ts, "t_wall": 0, "label": f"cp{i}"} for i, ts in enumerate(SNAPSHOTS)]
    run_dir = synth.write_run(tmp_path / name, synth.make_rows(t, y), events=events,
                              settings={} if guard is None else {"snapshot_guard_s": guard})
    return reports.analyze(reports.load_run(run_dir))


def test_snapshot_steps_are_not_a_leak_but_a_real_slope_still_is(tmp_path):
    clean = _run(tmp_path, "clean", 0.0)
    assert clean.signal("rss").verdict == "pass", clean.signal("rss").reason
    assert "snapshot" in clean.signal("rss").reason and clean.signal("rss").snapshot_steps > 70 * MB
    raw = _run(tmp_path, "raw", 0.0, guard=0.0)
    # What the steps look like without removal: never a pass (leak, or inconclusive when the
    # uneven halves read as slowing growth).
    assert raw.signal("rss").verdict in ("leak", "inconclusive"), raw.signal("rss").reason
    leaky = _run(tmp_path, "leaky", 10.0)
    rss = leaky.signal("rss")
    assert rss.verdict == "leak" and rss.trend.ci_low_per_h < 10 * MB < rss.trend.ci_high_per_h


def test_step_removal_keeps_false_alarms_at_the_test_level():
    # Subtracting jointly estimated steps must not lend the remaining slope false confidence.
    settings = resolve()
    leaks = sum(classify(SPECS["rss"], t, y * MB, settings, snapshot_times=SNAPSHOTS).verdict == "leak"
                for t, y in (_series(0.0, seed) for seed in range(100, 160)))
    assert leaks <= 2
