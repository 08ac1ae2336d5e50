"""memsoak/reports/verdict/decision.py: classify_window's rules on their own, with no series and no prose."""
import dataclasses
import json

import pytest

from memsoak.reports.render.render_json import to_plain
from memsoak.reports.stats.attribution import NetGrowth
from memsoak.reports.stats.trend import Drift, Trend
from memsoak.reports.verdict.decision import Below, Findings, Rule, Why, decide, decide_memory
from memsoak.reports.verdict.explain import explain
from memsoak.reports.verdict.verdicts import Verdict

MB = 1024 * 1024


def _trend(**changes):
    trend = Trend(n=300, slope_per_h=10 * MB, ci_low_per_h=8 * MB, ci_high_per_h=12 * MB, ols_slope_per_h=10 * MB,
                  p_value=1e-6, mk_p_value=1e-6, lag1=0.5, n_eff=100.0, late_slope_per_h=10 * MB,
                  early_slope_per_h=10 * MB, early_rise=True, significant=True, persists=True,
                  level_end=300 * MB, growth=5 * MB)
    return dataclasses.replace(trend, **changes)


def _findings(**changes):
    """A steady 10 MB/h, 5 MB rise over a 30-minute window that every test found: a leak."""
    base = Findings(unit="bytes", samples=300, span_s=1800.0, tests=("slope test (gls_ar1)",), floor_kind="rate",
                    floor=1 * MB, amount=10 * MB, min_growth=1 * MB, min_growth_name="rss_min_growth_mb", net=None,
                    plateau_found=False, decelerating=False, large_monotone=True, fallback_plateau=False,
                    late_rise=True, steady=True, long_enough=True, decide_after_s=5400.0, change_point=False,
                    settled_level=300 * MB, trend=_trend(), ops=None, late_walk=None, late_mk=1e-4, ratio=0.5)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("changes, verdict, rule", [
    ({}, Verdict.LEAK, Rule.GROWTH),
    ({"net": NetGrowth(0.1 * MB, "a", "b", 0.0, 2000.0)}, Verdict.PASS, Rule.NET_DIFF_SMALL),
    ({"net": NetGrowth(4 * MB, "a", "b", 0.0, 2000.0)}, Verdict.LEAK, Rule.GROWTH),   # the diff confirms it
    ({"plateau_found": True}, Verdict.PLATEAU, Rule.PLATEAU),
    ({"decelerating": True}, Verdict.INCONCLUSIVE, Rule.SLOWING),
    ({"tests": ()}, Verdict.LEAK, Rule.MONOTONE),
    ({"tests": (), "long_enough": False}, Verdict.INCONCLUSIVE, Rule.MONOTONE_UNDECIDED),
    ({"tests": (), "large_monotone": False, "fallback_plateau": True}, Verdict.PLATEAU, Rule.FALLBACK_PLATEAU),
    ({"amount": 0.5 * MB, "large_monotone": False}, Verdict.PASS, Rule.SMALL),
    ({"tests": (), "large_monotone": False}, Verdict.PASS, Rule.NOT_SIGNIFICANT),
])
def test_each_rule_gives_its_verdict_in_order(changes, verdict, rule):
    decision = decide(_findings(**changes))
    assert (decision.verdict, decision.rule) == (verdict, rule)
    reason, evidence = explain(decision, _findings(**changes))
    assert reason   # every decision has its sentence


def test_the_reasons_that_differ_within_a_rule_are_codes():
    assert decide(_findings(tests=(), long_enough=False)).why == Why.SHORT_WINDOW
    assert decide(_findings(tests=(), steady=False)).why == Why.SLOWED
    assert decide(_findings(tests=(), late_rise=False)).why == Why.NOT_RISING
    assert decide(_findings(amount=0.5 * MB, large_monotone=False)).below == Below.FLOOR
    small = _findings(trend=_trend(growth=0.5 * MB), large_monotone=False)
    assert decide(small).below == Below.MIN_GROWTH
    assert "below rss_min_growth_mb=1.00 MB" in explain(decide(small), small)[0]
    inconclusive = decide(_findings(decelerating=True))
    assert inconclusive.decide_after_s == 5400.0 and "a run of about 90 minutes would tell" in explain(
        inconclusive, _findings(decelerating=True))[0]


def test_a_pass_after_a_change_point_settles_at_the_window_end_level():
    found = _findings(tests=(), large_monotone=False, change_point=True, settled_level=250 * MB)
    decision = decide(found)
    assert decision.settled and decision.plateau_level == 250 * MB
    assert explain(decision, found)[0].endswith("; settled at 250.00 MB after the warm-up")
    assert not decide(_findings(change_point=True)).settled   # a leak does not settle


def test_the_memory_verdict_is_driven_by_the_first_leaking_signal_in_the_driver_order():
    order = ("heap", "rss", "open_fds")
    assert decide_memory([("rss", "leak"), ("heap", "leak")], order).driver == "heap"
    memory = decide_memory([("rss", "pass"), ("heap", "inconclusive"), ("open_fds", "inconclusive")], order)
    assert (memory.verdict, memory.driver, memory.undecided) == (Verdict.INCONCLUSIVE, None, ("heap", "open_fds"))
    assert decide_memory([("rss", "plateau"), ("tree", "leak")], order).verdict == Verdict.PASS


def test_verdicts_serialise_as_the_strings_report_json_always_had():
    assert Verdict.LEAK == "leak" and f"{Verdict.INSUFFICIENT}" == "insufficient"
    assert json.dumps(to_plain({"verdict": Verdict.PLATEAU})) == '{"verdict": "plateau"}'


def test_a_leak_whose_late_half_looked_flatter_but_still_walks_up_says_so():
    # No stored run reaches this sentence; it is the one classify_window wrote before the split.
    found = _findings(trend=_trend(persists=False, late_slope_per_h=2 * MB),
                      late_walk=Drift(8 * MB, 1 * MB, 0.001, 0.9, 3))
    decision = decide(found)
    assert decision.verdict == Verdict.LEAK and decision.rule == Rule.GROWTH
    assert explain(decision, found)[0].endswith(
        "; the late half looked flatter (2.00 MB/h) but its increments still walk up at 8.00 MB/h (p=0.001): no plateau")
