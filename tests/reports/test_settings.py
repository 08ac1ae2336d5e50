"""The settings table and the outcome codes: typed defaults, one name everywhere, precedence."""
from __future__ import annotations

import pytest

from memsoak.reports import outcome
from memsoak.reports.settings import SETTINGS, SettingError, resolve


def test_every_setting_has_a_typed_default_and_help():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.default is not None and isinstance(setting.default, setting.type) and setting.help
    spec = next(s for s in SETTINGS if s.name == "rss_limit_mb")
    assert (spec.flag, spec.env_var, spec.default) == ("--rss-limit-mb", "MEMSOAK_RSS_LIMIT_MB", 512.0)


def test_resolve_layers_and_types():
    values = resolve({"rss_limit_mb": "256", "unknown": 1}, {"top_n": "5"})
    assert values["rss_limit_mb"] == 256.0 and values["top_n"] == 5 and "unknown" not in values
    assert values["warmup_s"] < 0 and values["growth_threshold_mb"] == 50.0
    with pytest.raises(SettingError, match="--top-n"):
        resolve({"top_n": "many"})


def test_outcome_precedence_and_codes():
    assert outcome.decide(engine_lost=True, rss_limit=True, leak=True) == "engine_lost"
    assert outcome.decide(engine_lost=False, rss_limit=True, leak=True) == "rss_limit"
    assert outcome.decide(engine_lost=False, rss_limit=False, leak=True) == "leak"
    assert outcome.decide(engine_lost=False, rss_limit=False, leak=False) == "pass"
    assert [outcome.EXIT_CODES[k] for k in ("pass", "leak", "rss_limit", "engine_lost", "bad_config", "regression")] == [0, 10, 11, 12, 13, 14]


def test_plateau_ratio_and_plateau_early_ratio_are_two_knobs_old_runs_keep_one() -> None:
    old_run = resolve({"plateau_ratio": 0.4})            # a run.json from before the split
    assert (old_run.plateau_ratio, old_run.plateau_early_ratio) == (0.4, 0.4)
    new_run = resolve({"plateau_ratio": 0.4, "plateau_early_ratio": 0.25})
    assert (new_run.plateau_ratio, new_run.plateau_early_ratio) == (0.4, 0.25)
    assert resolve().alpha == resolve()["alpha"] == 0.01 and resolve().replace(alpha=0.05).alpha == 0.05
    with pytest.raises(SettingError, match="--plateau-early-ratio"):
        resolve({"plateau_early_ratio": 2})
