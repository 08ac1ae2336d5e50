"""classify_window's decisions, apart from the prose that explains them (explain.py).

The statistics of one analysed window are gathered in `Findings` (memsoak/reports/verdict/analysis.py:
classify_window computes them); `decide` turns them into a `Decision`: the verdict, which rule
gave it, and codes for the reasons that differ within a rule. It reads no settings and formats
no text, so a rule can be tested, or compared between versions, without parsing sentences.
`decide_memory` is the run's memory verdict from the signals' verdicts (the driver signal).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Sequence

from ..stats.attribution import NetGrowth
from ..stats.rates import OpsTrend
from ..stats.trend import Drift, Trend
from .verdicts import Verdict


class Rule(StrEnum):
    """Which rule of classify_window gave the verdict (in the order they are tried)."""
    TOO_FEW = "too_few_samples"                 # insufficient: the window has fewer than MIN_SAMPLES
    NET_DIFF_SMALL = "net_diff_below_floor"     # pass: the tracemalloc diff's net growth below the floor
    PLATEAU = "plateau"                         # plateau: the late half significantly flatter
    SLOWING = "slowing"                         # inconclusive: growth that slows without a plateau
    GROWTH = "growth"                           # leak: a test found growth above the floors
    MONOTONE = "monotone"                       # leak: monotone growth beyond the floors, still rising
    MONOTONE_UNDECIDED = "monotone_undecided"   # inconclusive: monotone growth, the window cannot tell
    FALLBACK_PLATEAU = "fallback_plateau"       # plateau: the late half slowed below plateau_ratio
    SMALL = "significant_but_small"             # pass: a test found growth below the floors
    NOT_SIGNIFICANT = "not_significant"         # pass: no test found growth


class Why(StrEnum):
    """Why monotone growth stayed inconclusive (Rule.MONOTONE_UNDECIDED)."""
    SHORT_WINDOW = "short_window"   # the window is shorter than MONOTONE_MIN_SPAN_S or MONOTONE_MIN_SAMPLES
    SLOWED = "slowed"               # its late half slowed (not steady)
    NOT_RISING = "not_rising"       # its late half no longer rose monotonically


class Below(StrEnum):
    """Which floor growth stayed under (a pass or fallback plateau that is not big enough)."""
    FLOOR = "floor"                 # the rate (or count) floor
    MIN_GROWTH = "min_growth"       # above the rate floor, below the signal's min growth over the window


@dataclass(frozen=True)
class Findings:
    """What the statistics found in one analysed window: `decide`'s only input (and the numbers the
    prose quotes). Amounts are in the signal's unit (bytes, blocks, count), rates per hour."""
    unit: str                      # bytes | blocks | count
    samples: int                   # samples in the analysed window
    span_s: float                  # the analysed window's length
    tests: tuple[str, ...]         # the tests that found growth (growth_evidence)
    floor_kind: str                # "rate" (per hour) or "growth" (over the window)
    floor: float
    amount: float                  # the slope per hour ("rate") or the growth ("growth")
    min_growth: float | None       # growth over the window also needed (bytes), when the signal has one
    min_growth_name: str | None    # that setting's name
    net: NetGrowth | None          # the tracemalloc diff's net growth, when it gates this window
    plateau_found: bool            # the late half significantly flatter and not still walking up
    decelerating: bool             # the late half slowed, levels and increments both
    large_monotone: bool           # above both floors, Mann-Kendall rising, increments walking up
    fallback_plateau: bool         # the late half below plateau_ratio of the early half, not rising
    late_rise: bool                # the late half's Mann-Kendall significant and its slope positive
    steady: bool                   # the late half keeps DRIFT_STEADY of the early half's pace
    long_enough: bool              # at least MONOTONE_MIN_SPAN_S and MONOTONE_MIN_SAMPLES
    decide_after_s: float          # run length (from the start) that would tell a fill from a leak
    change_point: bool             # the warm-up cut ended at a change point
    settled_level: float           # mean of the window's last tenth
    trend: Trend
    ops: OpsTrend | None
    late_walk: Drift | None        # the late half's increments still walking up (late_drift)
    late_mk: float                 # the late half's Mann-Kendall p-value
    ratio: float                   # plateau_ratio
    snapshot_steps: float | None = None   # total step removed at tracemalloc snapshots
    snapshot_count: int = 0


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    rule: Rule
    why: Why | None = None              # Rule.MONOTONE_UNDECIDED only
    below: Below | None = None          # growth not big enough: under which floor
    decide_after_s: float | None = None  # inconclusive: run length (s from start) that would decide
    plateau_level: float | None = None
    settled: bool = False               # a pass whose warm-up ended at a change point: settled at plateau_level


def big_enough(f: Findings) -> bool:
    return f.amount >= f.floor and (f.min_growth is None or f.trend.growth >= f.min_growth)


def decide(f: Findings) -> Decision:
    """The verdict on one window from its findings (the rules, in order; see analysis.py's docstring)."""
    big = big_enough(f)
    below = None if big else (Below.MIN_GROWTH if f.amount >= f.floor else Below.FLOOR)
    if f.tests and big and f.net is not None and f.net.total_bytes < (f.min_growth or 0.0):
        # Between snapshots the traced heap also holds garbage waiting for a full collection (in a
        # quick run often only the snapshots trigger one), and removing the snapshot steps counts
        # what they collected as growth; the diff's two ends carry alike.
        decision = Decision(Verdict.PASS, Rule.NET_DIFF_SMALL)
    elif f.tests and big and f.plateau_found:
        decision = Decision(Verdict.PLATEAU, Rule.PLATEAU, plateau_level=f.trend.level_end)
    elif f.tests and big and f.decelerating:
        decision = Decision(Verdict.INCONCLUSIVE, Rule.SLOWING, decide_after_s=f.decide_after_s)
    elif f.tests and big:
        decision = Decision(Verdict.LEAK, Rule.GROWTH)
    elif f.large_monotone and not (f.plateau_found or f.fallback_plateau):
        # Issue 9: growth beyond both floors that rose monotonically (Mann-Kendall on block means)
        # and did not settle is never a pass, whatever the slope and drift tests said about its noise.
        if f.long_enough and f.late_rise and f.steady:
            decision = Decision(Verdict.LEAK, Rule.MONOTONE)
        else:
            why = Why.SHORT_WINDOW if not f.long_enough else (Why.SLOWED if not f.steady else Why.NOT_RISING)
            decision = Decision(Verdict.INCONCLUSIVE, Rule.MONOTONE_UNDECIDED, why=why,
                                decide_after_s=f.decide_after_s)
    elif f.fallback_plateau:
        decision = Decision(Verdict.PLATEAU, Rule.FALLBACK_PLATEAU, below=below, plateau_level=f.trend.level_end)
    elif f.tests:
        decision = Decision(Verdict.PASS, Rule.SMALL, below=below)
    else:
        decision = Decision(Verdict.PASS, Rule.NOT_SIGNIFICANT)
    if f.change_point and decision.verdict == Verdict.PASS:
        decision = Decision(decision.verdict, decision.rule, decision.why, decision.below, decision.decide_after_s,
                            plateau_level=f.settled_level, settled=True)
    return decision


@dataclass(frozen=True)
class MemoryDecision:
    """The run's memory verdict: leak when any signal leaks, driven by the first in the driver order."""
    verdict: Verdict
    driver: str | None                  # the first leaking signal's name
    undecided: tuple[str, ...]          # inconclusive signals, in the driver order


def decide_memory(verdicts: Sequence[tuple[str, str]], driver_order: Sequence[str]) -> MemoryDecision:
    """From (signal name, verdict) pairs; signals outside `driver_order` never drive."""
    by_name = dict(verdicts)
    leaking = [name for name in driver_order if by_name.get(name) == Verdict.LEAK]
    undecided = tuple(name for name in driver_order if by_name.get(name) == Verdict.INCONCLUSIVE)
    driver = leaking[0] if leaking else None
    verdict = Verdict.LEAK if driver else (Verdict.INCONCLUSIVE if undecided else Verdict.PASS)
    return MemoryDecision(verdict, driver, undecided)
