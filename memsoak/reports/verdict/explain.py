"""The prose of a per-signal verdict: a Decision and its Findings (decision.py) in, the report's
sentences out (SignalReport.reason and .evidence). No decision is taken here."""
from __future__ import annotations

from ..stats.rates import OpsTrend
from ..stats.trend import Trend
from .decision import Below, Decision, Findings, Rule, Why
from .legacy import MB


def fmt(value: float, unit: str) -> str:
    return f"{value / MB:.2f} MB" if unit == "bytes" else f"{value:.0f} {unit if unit != 'count' else ''}".strip()


def per_h(value: float, unit: str) -> str:
    return f"{value / MB:.2f} MB/h" if unit == "bytes" else f"{value:.3g} {unit}/h"


def tests_text(trend: Trend, ops: OpsTrend | None) -> str:
    parts = [f"slope p={trend.p_value:.2g}", f"Mann-Kendall p={trend.mk_p_value:.2g}"]
    if trend.drift is not None:
        parts.append(f"increments' drift p={trend.drift.p_value:.2g}, {trend.drift.share_up:.0%} up")
    if ops is not None:
        parts.append(f"per {ops.op.rstrip('s')} p={ops.p_value:.2g}")
    return ", ".join(parts)


def too_few(samples: int, need: int) -> str:
    return f"{samples} samples after warm-up; need {need}"


def explain(d: Decision, f: Findings) -> tuple[str, str]:
    """(reason, evidence) for a decision: the sentences reports have always shown."""
    unit, trend = f.unit, f.trend
    floor_text = f"{f.floor / MB:.2f} MB/h" if f.floor_kind == "rate" else fmt(f.floor, unit)
    amount_text = f"{f.amount / MB:.2f} MB/h" if f.floor_kind == "rate" else fmt(f.amount, unit)
    if f.min_growth is not None:
        floor_text += f" and {f.min_growth / MB:.2f} MB over the window"
        amount_text += f", {trend.growth / MB:.2f} MB over the window"
    if d.below == Below.MIN_GROWTH:
        small_text = (f"{trend.growth / MB:.2f} MB over the window, below {f.min_growth_name}="
                      f"{(f.min_growth or 0.0) / MB:.2f} MB ({f.amount / MB:.2f} MB/h)")
    else:
        small_text = f"{amount_text} below the floor {floor_text}"
    tests = tests_text(trend, f.ops)
    late, early = per_h(trend.late_slope_per_h, unit), per_h(trend.early_slope_per_h, unit)
    evidence = ", ".join(f.tests)
    if d.rule == Rule.NET_DIFF_SMALL:
        assert f.net is not None
        reason = (f"significant but small: {f.net.describe()}, below {f.min_growth_name}="
                  f"{(f.min_growth or 0.0) / MB:.2f} MB, although the series read {amount_text} "
                  f"({tests}): garbage between full collections, not live growth")
        evidence = "tracemalloc net diff (live heap) below the floor"
    elif d.rule == Rule.PLATEAU:
        reason = (f"grew then flattened: late-half slope {late} vs early-half {early} (significantly below "
                  f"{f.ratio:g}x the whole slope); level {fmt(trend.level_end, unit)}")
        evidence = "plateau: late half significantly flatter"
    elif d.rule == Rule.SLOWING:
        reason = (f"{amount_text} ({tests}) above the floor {floor_text}, but slowing "
                  f"(late half {late} vs early half {early}) without a plateau yet: a bounded "
                  f"structure still filling or a leak; a run of about {(d.decide_after_s or 0.0) / 60:.0f} minutes "
                  "would tell (or compare against a known-good run)")
    elif d.rule == Rule.GROWTH:
        reason = f"{amount_text} ({tests}) above the floor {floor_text}; evidence: {evidence}"
        if f.net is not None:
            reason += f"; {f.net.describe()} confirms it"
        if not trend.persists and f.late_walk is not None:
            reason += (f"; the late half looked flatter ({late}) but its increments still walk up at "
                       f"{per_h(f.late_walk.rate_per_h, unit)} (p={f.late_walk.p_value:.2g}): no plateau")
    elif d.rule == Rule.MONOTONE:
        evidence = "monotone growth beyond the floors, still rising in the late half"
        reason = (f"{amount_text} above the floor {floor_text}, rising monotonically over the window "
                  f"and in its late half ({tests}; late half Mann-Kendall p={f.late_mk:.2g}) "
                  "with no plateau: a leak, although the slope and drift tests alone did not "
                  "separate it from the noise")
    elif d.rule == Rule.MONOTONE_UNDECIDED:
        why = (f"the analysed window is {f.span_s:.0f} s" if d.why == Why.SHORT_WINDOW else
               f"its late half {'slowed' if d.why == Why.SLOWED else 'no longer rose monotonically'} "
               f"({late} vs {early} early; late half Mann-Kendall p={f.late_mk:.2g})")
        evidence = "monotone growth beyond the floors, no plateau"
        reason = (f"{amount_text} above the floor {floor_text}, rising monotonically ({tests}), "
                  f"but {why}: a bounded structure still filling or a leak; a run of about "
                  f"{(d.decide_after_s or 0.0) / 60:.0f} minutes would tell (or compare against a known-good run)")
    elif d.rule == Rule.FALLBACK_PLATEAU:
        reason = (f"grew then flattened: late-half slope {late} vs early-half {early}; level "
                  f"{fmt(trend.level_end, unit)}" + ("" if d.below is None else f" ({small_text})"))
    elif d.rule == Rule.SMALL:
        reason = f"significant but small: {small_text} ({tests})"
    else:
        reason = f"growth not significant on any test ({amount_text}; {tests})"
    if d.settled and d.plateau_level is not None:
        reason += f"; settled at {fmt(d.plateau_level, unit)} after the warm-up"
    if f.snapshot_steps is not None:
        reason += f"; {fmt(f.snapshot_steps, unit)} of steps at {f.snapshot_count} tracemalloc snapshot(s) removed"
    return reason, evidence
