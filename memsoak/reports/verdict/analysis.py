"""analyze(): one RunData in, one Report out.

Each signal is cut at its warm-up end and tested on its own (trend.trend_test); a leak needs
evidence of growth above the signal's practical floor, from any of three tests with Mann-Kendall
agreeing (growth_evidence: the slope test on the levels, the increments' drift with Newey-West
errors, the regression on cumulative operations), and no positive plateau finding; slowing growth
without a plateau is `inconclusive` (exit 15) with the run length that would decide, never a pass.
The tracemalloc sites are evidence of their own (fuse_sites). The overall memory verdict is
a leak when any signal leaks, driven by the first leaking signal in DRIVER_ORDER (the Python heap
first when tracing: RSS keeps freed memory in allocator arenas, the heap does not). A traced heap's
leak also needs the tracemalloc diff's net growth over the window (when a diff brackets it) above
heap_min_growth_mb: the series carries garbage that waits for a full collection, the diff's two
ends carry alike. A leak per session or message is a random walk with drift, which the slope
test alone cannot tell from noise: hence the drift and per-operation tests. Events then set the
outcome: engine_lost > rss_limit > leak > inconclusive > pass.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats

from .. import outcome as outcomes
from ..rundata import RunData
from ..settings import AnalysisSettings, resolve
from ..stats.attribution import MEMRAY_NOTE, NetGrowth, net_growth, rank_sites, rank_types, resource_growth
from ..stats.rates import OpsTrend, op_series, ops_trend, per_op_rates, project, which_action
from ..stats.steps import remove_snapshot_steps
from ..stats.trend import Drift, Trend, block_means, drift_hac, mann_kendall_hr, trend_test
from ..stats.warmup import WarmupCut, find_warmup
from memsoak.contract import over_rss_limit

from . import evidence, explain
from .decision import Findings, decide, decide_memory
from .legacy import MB, legacy_verdict
from .model import Report, SignalReport
from .verdicts import Verdict

MIN_SAMPLES = 12
DRIFT_BLOCKS = 10    # block means for the drift test: 9 increments
DRIFT_STEADY = 0.6      # the drift test calls only growth whose late half keeps this share of its pace
DECELERATING = 0.5   # late-half slope below this share of the early half's: say so in the reason


@dataclass(frozen=True)
class SignalSpec:
    name: str
    label: str
    unit: str
    field: str
    floor: Callable[[AnalysisSettings], tuple[str, float]]   # ("rate", units/h) or ("growth", units)
    snapshot_steps: bool = True    # tracemalloc snapshots cost memory and objects, not fds/threads/tasks
    min_growth_mb: str | None = None   # a setting: growth over the window also needed for a leak
    # Before issue 9 the drift test ran only for counts ("always") and RSS near a unit root
    # ("unit_root"); every signal now gets the increments' drift test (growth_evidence). Kept as
    # a description of the signal, unused by the verdict.
    drift_test: str = "never"
    # the snapshots' net diff may veto a heap leak as garbage (exact tracemalloc diffs only: a
    # sampled diff is an estimate, a sample or two on a small leak)
    net_gate: bool = True


def _rate_floor(settings: AnalysisSettings) -> tuple[str, float]:
    return "rate", settings.min_rate_mb_per_hour * MB


def _growth_floor(setting: str) -> Callable[[AnalysisSettings], tuple[str, float]]:
    return lambda settings: ("growth", float(getattr(settings, setting)))


SPECS = {
    "rss": SignalSpec("rss", "RSS", "bytes", "rss_bytes", _rate_floor, min_growth_mb="rss_min_growth_mb",
                      drift_test="unit_root"),
    "tree_rss": SignalSpec("tree_rss", "tree RSS", "bytes", "tree_rss_bytes", _rate_floor,
                           min_growth_mb="rss_min_growth_mb", drift_test="unit_root"),
    "heap_traced": SignalSpec("heap", "Python heap (tracemalloc)", "bytes", "traced_current_bytes", _rate_floor,
                              min_growth_mb="heap_min_growth_mb"),
    # The hook's sampled allocation tracker (issue 11): an unbiased estimate of the live heap that
    # moves in steps of about one sampling mean; its snapshots read a table and leave no step.
    "heap_sampled": SignalSpec("heap", "Python heap (sampled)", "bytes", "traced_current_bytes", _rate_floor,
                               snapshot_steps=False, min_growth_mb="heap_min_growth_mb", net_gate=False),
    "heap_blocks": SignalSpec("heap", "Python heap (allocated blocks)", "blocks", "allocated_blocks",
                              _growth_floor("heap_blocks_min_growth")),
    "gc_objects": SignalSpec("gc_objects", "gc objects", "count", "gc_objects", _growth_floor("objects_min_growth")),
    "open_fds": SignalSpec("open_fds", "open fds", "count", "open_fds", _growth_floor("fds_min_growth"), False,
                           drift_test="always"),
    "threads": SignalSpec("threads", "threads", "count", "threads", _growth_floor("threads_min_growth"), False,
                          drift_test="always"),
    "asyncio_tasks": SignalSpec("asyncio_tasks", "asyncio tasks", "count", "asyncio_tasks",
                                _growth_floor("tasks_min_growth"), False, drift_test="always"),
}
DRIVER_ORDER = ("heap", "rss", "tree_rss", "gc_objects", "open_fds", "threads", "asyncio_tasks")


def row_times(rows: list[dict[str, Any]]) -> np.ndarray:
    """Seconds since test start: the harness clock `t`, else the engine's monotonic clock."""
    if all(row.get("t") is not None for row in rows):
        return np.array([float(row["t"]) for row in rows])
    mono = [row.get("t_mono") for row in rows]
    base = next((m for m in mono if m is not None), 0.0)
    return np.array([float(m) - base if m is not None else math.nan for m in mono])


def drift_p_value(t: np.ndarray, y: np.ndarray) -> float:
    """One-sided t-test that the increments between consecutive block means average above zero.

    A leaked fd or task per session makes the count a random walk with drift: around a straight
    line its residuals wander like a random walk, so the autocorrelation-adjusted slope test sees
    a handful of effective samples however long the run (a 5-minute demo run, +1,629 fds: p=0.015).
    The increments of a random walk are independent, so a test on them is exact there; on a
    stationary count (fds opened and closed) they telescope and the test is conservative.
    """
    _, means = block_means(t, y, DRIFT_BLOCKS)
    steps = np.diff(means)
    if len(steps) < 3:
        return 1.0
    if float(np.ptp(steps)) == 0.0:
        return 0.0 if steps[0] > 0 else 1.0
    return float(stats.ttest_1samp(steps, 0.0, alternative="greater").pvalue)


def _steady(trend: Trend) -> bool:
    """Growth that keeps its pace: the late half's slope is at least DRIFT_STEADY of the early half's.

    The drift test only asks that block means keep rising, which a clean engine's RSS also does
    while its arenas still fill: two clean 5-minute demo runs (think 0.5-2 s) read p=0.0002 on the
    increments with the late half at 0.47 and 0.50 of the early half's slope; real leaks read
    1.00-1.02 (native, fd+task, 5-minute runs).
    """
    return not (trend.early_slope_per_h > 0 and trend.late_slope_per_h < DRIFT_STEADY * trend.early_slope_per_h)


def growth_evidence(trend: Trend, ops: OpsTrend | None, alpha: float) -> list[str]:
    """Which tests find growth, each with Mann-Kendall on the block means agreeing (a monotone rise).

    - the slope test on the levels (trend.trend_test: GLS or AR(1)-inflated OLS), which has the
      power on stationary noise (AR(1), steps, saw-teeth) around a line;
    - the drift of the increments with Newey-West errors (trend.drift_hac), the test of the leak's own
      model, a random walk with drift, where the slope test loses its power;
    - memory regressed on cumulative operations (rates.ops_trend): the same walk is a line in
      operations, its residuals the noise.
    """
    found = []
    monotone = trend.mk_p_value < alpha and trend.slope_per_h > 0
    if trend.significant:
        found.append(f"slope test ({trend.method})")
    if monotone and trend.drift is not None and trend.drift.p_value < alpha and trend.drift.rate_per_h > 0:
        found.append("drift of increments (Newey-West)")
    if monotone and ops is not None and ops.p_value < alpha and ops.per_op > 0:
        found.append(f"regression on cumulative {ops.op}")
    return found


STALL_SHARE = 0.5    # traffic below this share of its median pace (over STALL_SPAN samples) stalled
STALL_SPAN = 10


def stalled_increments(counts: dict[str, np.ndarray]) -> np.ndarray | None:
    """Per increment, whether the traffic had stalled for good: its pace (operations per interval,
    averaged over STALL_SPAN intervals) below STALL_SHARE of the median pace from some point to
    the end, from the total requests or else the first operation count; None without counts.
    (Per interval, a 3-per-second tail at a 17-per-second median still has many intervals above a
    quarter of the median, hence the average.)"""
    name = "requests" if "requests" in counts else next(iter(counts), None)
    if name is None:
        return None
    steps = np.diff(np.asarray(counts[name], float))
    if len(steps) < STALL_SPAN:
        return None
    pace = np.convolve(steps, np.ones(STALL_SPAN) / STALL_SPAN, mode="same")
    typical = float(np.median(pace))
    if typical <= 0:
        return None
    # Only a stall that lasts to the end of the window (the load winding down, the final snapshot
    # and diffs computed inside the engine): scattered slow spells of an overloaded engine are
    # still the walk (masking them cost the drift test its power on real leaks).
    active = np.nonzero(pace >= STALL_SHARE * typical)[0]
    stalled = np.zeros(len(steps), bool)
    if len(active):
        stalled[active[-1] + 1:] = True
    return stalled


def late_drift(t: np.ndarray, y: np.ndarray, trend: Trend, ratio: float, alpha: float) -> Drift | None:
    """The late half's increments when they still walk up significantly at >= `ratio` of the whole pace."""
    half = len(y) // 2
    if len(y) - half < 8 or trend.drift is None or trend.drift.rate_per_h <= 0:
        return None
    late = drift_hac(t[half:], y[half:])
    if late.p_value < alpha and late.rate_per_h >= ratio * trend.drift.rate_per_h:
        return late
    return None


SLOWING_Z = 1.645      # see slowing_increments: a one-sided 95% finding that the increments slowed
SLOWING_SHARE = 0.7    # a steady leak's halves keep ~1.0 of the pace; a fill with tau ~ the window, 0.6


def slowing_increments(t: np.ndarray, y: np.ndarray) -> bool:
    """Whether the increments themselves slowed: the late half's drift, SLOWING_Z standard errors
    above its estimate, stays below SLOWING_SHARE of the early half's (the levels' halves must also
    say so, _steady). A line under slow noise has
    imprecise increments (the margin is wide: it keeps its leak call, as it did before issue 9); a
    fill whose every step is positive has precise ones. (Half a standard error left 6% of 1.1 MB/h
    AR(1) leaks inconclusive in 200 series; the levels' halves alone, 15-35%.)"""
    half = len(y) // 2
    if half < 8 or len(y) - half < 8:
        return False
    early, late = drift_hac(t[:half], y[:half]), drift_hac(t[half:], y[half:])
    if early.rate_per_h <= 0 or not math.isfinite(late.se_per_h):
        return False
    return late.rate_per_h + SLOWING_Z * late.se_per_h < SLOWING_SHARE * early.rate_per_h


MONOTONE_MIN_SPAN_S = 120.0   # the monotone-growth rule calls a leak only on a window this long...
MONOTONE_MIN_SAMPLES = 30     # ...with this many samples; shorter: inconclusive with a run length


def late_half_mk(t: np.ndarray, y: np.ndarray) -> float:
    """One-sided Hamed-Rao Mann-Kendall p-value on the late half's block means (1.0 when too short)."""
    half = len(y) // 2
    if len(y) - half < 8:
        return 1.0
    return mann_kendall_hr(block_means(t[half:], y[half:])[1])


MONOTONE_DRIFT_ALPHA = 0.05   # see walks_up
SIGN_BLOCKS = 24


def walks_up(t: np.ndarray, y: np.ndarray, trend: Trend, alpha: float) -> bool:
    """Whether the rise is a walk with positive drift rather than a driftless wander.

    Mann-Kendall (even Hamed-Rao's) reads a driftless random walk's excursions as a trend: 3 of 40
    bounded fd walks came out p < 0.01 with +12 to +26 fds. The rise also needs its increments to
    say "up": their mean on the Newey-West drift test at MONOTONE_DRIFT_ALPHA, or a sign test
    (at alpha) on the increments of SIGN_BLOCKS block means, which keeps its power on short
    windows (a 30-second run: 21 of 21 up) where the drift test has little."""
    if trend.drift is not None and trend.drift.p_value < MONOTONE_DRIFT_ALPHA and trend.drift.rate_per_h > 0:
        return True
    steps = np.diff(block_means(t, y, SIGN_BLOCKS)[1])
    steps = steps[steps != 0]
    if len(steps) < 6:
        return False
    return float(stats.binomtest(int((steps > 0).sum()), len(steps), 0.5, alternative="greater").pvalue) < alpha


DECIDE_FILL = math.log(8.0)   # see decide_length


def decide_length(tw: np.ndarray, trend: Trend, cut_s: float) -> float:
    """Seconds of run (from its start) after which a fill like this one would read as a plateau.

    Read as an exponential approach, the late half's pace over the early half's gives the time
    constant, tau = (window / 2) / ln(early / late); a window of 2 tau ln 8 (~4.2 tau) brings the late
    half's pace below 1/8 of the early half's, clearly under plateau_early_ratio. At least twice the window.
    """
    span = float(tw[-1] - tw[0])
    early, late = trend.early_slope_per_h, trend.late_slope_per_h
    if early > 0 and 0 < late < early:
        tau = (span / 2) / math.log(early / late)
        need = max(2 * tau * DECIDE_FILL, 2 * span)
    else:
        need = 3 * span
    return cut_s + need


def hook_health(run: RunData) -> dict[str, Any]:
    """The hook's /health as the harness recorded it at the start ({} when missing or malformed)."""
    health = run.run_json.get("health")
    return health if isinstance(health, dict) else {}


def alloc_mode(run: RunData) -> str | None:
    """The hook's allocation mode as its /health said at the start (sampled, tracemalloc, off)."""
    mode = hook_health(run).get("alloc_mode")
    return mode if isinstance(mode, str) else None


SAMPLED_FLOOR_SAMPLES = 4   # see sampled_heap_floor_mb


def sampled_heap_floor_mb(run: RunData) -> float | None:
    """The heap's growth floor in sampled mode: SAMPLED_FLOOR_SAMPLES sampling means.

    The sampled estimate moves in steps of about one mean (512 KiB by default), so growth of a
    sample or two is the sampler's granularity as much as the engine's: three of four clean-engine
    heaps (5-minute runs, 20 users) read +0.6 to +1.1 MB with the slope test significant, against
    heap_min_growth_mb's 0.25 MB (a floor set for exact tracemalloc)."""
    health = hook_health(run)
    config = health.get("config") if isinstance(health.get("config"), dict) else {}
    mean = config.get("sample_bytes")
    if not isinstance(mean, (int, float)) or mean <= 0:
        return None
    return SAMPLED_FLOOR_SAMPLES * float(mean) / MB


def _heap_spec(rows: list[dict[str, Any]], mode: str | None = None) -> SignalSpec | None:
    traced = sum(1 for row in rows if row.get("traced_current_bytes") is not None)
    if traced >= MIN_SAMPLES and traced >= 0.3 * len(rows):
        return SPECS["heap_sampled" if mode == "sampled" else "heap_traced"]
    if any(row.get("allocated_blocks") is not None for row in rows):
        return SPECS["heap_blocks"]
    return None


def classify(spec: SignalSpec, t: np.ndarray, y: np.ndarray, settings: AnalysisSettings, *,
             users: list[Any] | None = None, warmup_event_s: float | None = None,
             snapshot_times: list[float] | None = None, net_heap: NetGrowth | None = None,
             counts: dict[str, np.ndarray] | None = None) -> SignalReport:
    """The verdict on one series alone: warm-up cut, trend test, plateau, practical floor."""
    return classify_window(spec, t, y, settings, users=users, warmup_event_s=warmup_event_s,
                           snapshot_times=snapshot_times, net_heap=net_heap, counts=counts)[0]


def classify_window(spec: SignalSpec, t: np.ndarray, y: np.ndarray, settings: AnalysisSettings, *,
                    users: list[Any] | None = None, warmup_event_s: float | None = None,
                    snapshot_times: list[float] | None = None, net_heap: NetGrowth | None = None,
                    counts: dict[str, np.ndarray] | None = None) -> tuple[SignalReport, np.ndarray, np.ndarray]:
    """classify(), plus the indices of the analysed samples and their (step-corrected) values.

    `net_heap` (traced heap only): the tracemalloc diffs' net growth, a second gate on a leak.
    `counts`: cumulative operation counts aligned with t, for the regression on operations."""
    cut = find_warmup(t, y, users, warmup_s=settings.warmup_s, event_s=warmup_event_s,
                      max_fraction=settings.warmup_max_fraction)
    window = t >= cut.end_s
    if window.sum() < MIN_SAMPLES and cut.method != "setting":
        # Too little left after the cut: analyse everything rather than nothing.
        window = np.ones_like(window)
        cut = WarmupCut(float(t[0]), "none", f"too few samples after the warm-up; kept all ({cut.detail})")
    index = np.nonzero(window)[0]
    tw, yw = t[index], y[index]
    net_gate = _net_gate(spec, net_heap, tw, settings)
    removal = None
    shifts = None
    if spec.snapshot_steps and snapshot_times:
        removal = remove_snapshot_steps(tw, yw, snapshot_times, settings.snapshot_guard_s)
        if removal.steps and removal.keep.sum() >= MIN_SAMPLES:
            shifts = removal.shifts[removal.keep]
            index, tw, yw = index[removal.keep], tw[removal.keep], removal.adjusted[removal.keep]
        else:
            removal = None
    base = SignalReport(spec.name, spec.label, spec.unit, spec.field, Verdict.INSUFFICIENT,
                        explain.too_few(len(index), MIN_SAMPLES),
                        len(y), cut, float(y[0]), float(y[-1]), float(y.min()), float(y.max()))
    if removal is not None:
        base.snapshot_steps, base.steps = removal.total, removal.steps
    if len(yw) < MIN_SAMPLES:
        return base, index, yw
    trend = trend_test(tw, yw, settings.alpha, settings.plateau_ratio, shifts=shifts)
    base.trend = trend
    kind, floor = spec.floor(settings)
    amount = trend.slope_per_h if kind == "rate" else trend.growth
    min_growth = None
    if spec.min_growth_mb:
        # RSS moves in allocator-sized chunks, and a clean engine's heap still fills its bounded
        # structures for minutes: in a short run, that much growth alone is not a leak.
        min_growth = float(getattr(settings, spec.min_growth_mb)) * MB
    alpha = settings.alpha
    ratio = settings.plateau_ratio
    window_counts = {name: values[index] for name, values in (counts or {}).items()
                     if len(values) == len(t) and np.ptp(values[index]) > 0}
    ops = ops_trend(yw, window_counts) if window_counts else None
    stalled = stalled_increments(window_counts)
    if stalled is not None and stalled.any() and trend.drift is not None:
        # Growth after the traffic stalled for good (the load stopping, a final snapshot or diff
        # computed inside the engine) is not a step of the traffic's walk: the drift test leaves
        # it out. A clean 5-minute run read +2.7 MB of heap there (drift p = 1e-5).
        walk = np.concatenate([[yw[0]], yw[0] + np.cumsum(np.where(stalled, 0.0, np.diff(yw)))])
        trend.drift = drift_hac(tw, walk)
    evidence = growth_evidence(trend, ops, alpha)
    big_enough = amount >= floor and (min_growth is None or trend.growth >= min_growth)
    late_walk = late_drift(tw, yw, trend, ratio, alpha)
    # A plateau is a positive finding: the late half significantly flatter (trend.persists false:
    # its 95% bound below plateau_ratio of the whole slope on the Gaussian route) AND not still
    # walking up at that share of the pace on the increments' own test.
    plateau_found = not trend.persists and late_walk is None
    decelerating = not _steady(trend) and slowing_increments(tw, yw)
    # Large monotone growth (issue 9): above both floors with Mann-Kendall significant on the block
    # means. It is bounded only on a plateau finding, or when the late half slowed below
    # plateau_early_ratio of the early half's pace and stopped rising monotonically (fallback_plateau).
    late_mk = late_half_mk(tw, yw)
    late_rise = late_mk < alpha and trend.late_slope_per_h > 0
    large_monotone = (big_enough and trend.mk_p_value < alpha and trend.slope_per_h > 0
                      and walks_up(tw, yw, trend, alpha))
    fallback_plateau = (trend.early_rise and trend.late_slope_per_h < settings.plateau_early_ratio * trend.early_slope_per_h
                        and late_walk is None and not (large_monotone and late_rise))
    findings = Findings(
        unit=spec.unit, samples=len(yw), span_s=float(tw[-1] - tw[0]), tests=tuple(evidence), floor_kind=kind,
        floor=floor, amount=amount, min_growth=min_growth, min_growth_name=spec.min_growth_mb, net=net_gate,
        plateau_found=plateau_found, decelerating=decelerating, large_monotone=large_monotone,
        fallback_plateau=fallback_plateau, late_rise=late_rise, steady=_steady(trend),
        long_enough=float(tw[-1] - tw[0]) >= MONOTONE_MIN_SPAN_S and len(yw) >= MONOTONE_MIN_SAMPLES,
        decide_after_s=decide_length(tw, trend, float(tw[0] - t[0])), change_point=cut.method == "change_point",
        settled_level=float(np.mean(yw[-max(1, len(yw) // 10):])), trend=trend, ops=ops, late_walk=late_walk,
        late_mk=late_mk, ratio=ratio, snapshot_steps=removal.total if removal is not None else None,
        snapshot_count=len(removal.steps) if removal is not None else 0)
    decision = decide(findings)
    base.verdict, base.decide_after_s, base.plateau_level = (decision.verdict, decision.decide_after_s,
                                                             decision.plateau_level)
    base.reason, base.evidence = explain.explain(decision, findings)
    return base, index, yw


def _net_gate(spec: SignalSpec, net_heap: NetGrowth | None, tw: np.ndarray,
              settings: AnalysisSettings) -> NetGrowth | None:
    """The diff's net growth when it applies: traced heap, and snapshots that bracket the window."""
    if (net_heap is None or spec.field != "traced_current_bytes" or not spec.net_gate or not spec.min_growth_mb
            or len(tw) < 2):
        return None
    dt = float(np.median(np.diff(tw)))
    tolerance = max(settings.snapshot_guard_s, 3 * dt)
    return net_heap if net_heap.covers(float(tw[0]), float(tw[-1]), tolerance) else None


def analyse_signal(spec: SignalSpec, rows: list[dict[str, Any]], t_all: np.ndarray,
                   settings: AnalysisSettings, warmup_event_s: float | None,
                   counts_all: dict[str, np.ndarray], snapshot_times: list[float],
                   net_heap: NetGrowth | None = None) -> SignalReport | None:
    keep = np.array([row.get(spec.field) is not None and math.isfinite(t) for row, t in zip(rows, t_all)])
    if keep.sum() < 2:
        return None
    t = t_all[keep]
    y = np.array([float(row[spec.field]) for row, k in zip(rows, keep) if k])
    users = [row.get("users") for row, k in zip(rows, keep) if k]
    kept_counts = {name: values[keep] for name, values in counts_all.items()}
    base, index, yw = classify_window(spec, t, y, settings, users=users, warmup_event_s=warmup_event_s,
                                      snapshot_times=snapshot_times, net_heap=net_heap, counts=kept_counts)
    if base.trend is None:
        return base
    counts = {name: values[keep][index] for name, values in counts_all.items()
              if np.ptp(values[keep][index]) > 0}
    base.per_op = per_op_rates(yw, counts)
    if spec.unit == "bytes" or base.verdict == Verdict.LEAK:
        base.attribution = which_action(yw, counts, settings.alpha)
    if spec.unit == "bytes":
        limit = settings.rss_limit_mb * MB if spec.name in ("rss", "tree_rss") else None
        base.projection = project(base.trend.slope_per_h, base.per_op, settings,
                                  level_now=float(yw[-1]), limit=limit or None)
    return base


SITE_SHARE = 0.5   # consistent sites must explain this share of the heap's growth to call it


def fuse_sites(heap: SignalReport | None, sites: list[Any], net_heap: NetGrowth | None,
               settings: AnalysisSettings) -> None:
    """The tracemalloc diffs as evidence of their own: sites that grew in every interval (at least
    two), together above heap_min_growth_mb and explaining at least SITE_SHARE of the heap's growth
    (the series' over the window, and the diffs' net growth when known), make the traced heap a leak
    whatever the series' p-values. A positive plateau finding or the diff gate still wins."""
    if heap is None or heap.unit != "bytes" or heap.trend is None or heap.verdict in (Verdict.LEAK, Verdict.PLATEAU):
        return
    if heap.evidence.startswith("tracemalloc net diff"):
        return
    consistent = [s for s in sites if s.consistent and s.growth > 0]
    if not consistent:
        return
    grown = sum(s.growth for s in consistent)
    floor = settings.heap_min_growth_mb * MB
    series = heap.trend.growth
    net = net_heap.total_bytes if net_heap is not None else series
    if grown < floor or series < floor or net < floor or grown < SITE_SHARE * min(series, net):
        return
    names = ", ".join((s.engine_frame or s.key) for s in consistent[:3])
    was = heap.verdict
    heap.verdict = Verdict.LEAK
    heap.evidence = (f"tracemalloc sites growing in every interval ({len(consistent)}: {names}); "
                     + (heap.evidence or "no series test below alpha"))
    heap.reason = (f"{len(consistent)} tracemalloc site(s) grew in every one of {consistent[0].intervals} intervals, "
                   f"{grown / MB:.2f} MB together, explaining the heap's growth ({series / MB:.2f} MB over the "
                   f"window, net diff {net / MB:.2f} MB); top {names}. The series alone said {was}: {heap.reason}")


def diagnosis(rss: SignalReport | None, heap: SignalReport | None, settings: AnalysisSettings) -> list[str]:
    """Notes that agree with the per-signal verdicts (never "the heap does not grow" when it grew)."""
    notes = []
    if rss is None or heap is None or rss.verdict != Verdict.LEAK or heap.verdict == Verdict.LEAK:
        return notes
    floor = settings.heap_min_growth_mb * MB if heap.unit == "bytes" else None
    grew = heap.trend.growth if heap.trend is not None else 0.0
    if heap.unit == "bytes" and floor is not None and grew < floor:
        notes.append(f"RSS grows while the Python heap does not ({grew / MB:+.2f} MB over its window, below "
                     f"{floor / MB:.2f} MB): native memory (C extensions) or allocator retention; see memray if it ran")
    elif heap.unit == "bytes":
        notes.append(f"RSS leaks; the Python heap grew {grew / MB:+.2f} MB over its window too (heap verdict "
                     f"{heap.verdict}): look at the tracemalloc sites first, then native memory")
    return notes


def _events(run: RunData) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for event in run.events:
        kind = event.get("type")
        if kind in ("engine_lost", "rss_limit", "stop", "warmup_end", "test_start") and kind not in found:
            found[kind] = event
        elif kind == "alloc_tracking":
            found[kind] = event   # the last: the tracker's figures at the end
    return found


def alloc_note(run: RunData, events: dict[str, Any]) -> str | None:
    """One line: which allocation mode ran (issue 11) and what it cost, from the hook's /health."""
    end = events.get("alloc_tracking") or {}
    health = hook_health(run)
    mode = end.get("mode") or health.get("alloc_mode")
    config = end.get("config") or health.get("config") or {}
    why = end.get("note") or health.get("alloc_note")
    if mode == "sampled":
        text = (f"allocation tracking: sampled, one sample per {int(config.get('sample_bytes') or 0) // 1024} KiB "
                f"allocated on average, stacks of up to {config.get('sample_frames')} frames; the heap series and "
                "the sites are unbiased estimates")
        stats = end.get("sampler") or {}
        if stats.get("own_bytes") is not None:
            text += (f"; at the end the tracker held {stats['own_bytes'] / MB:.2f} MB for "
                     f"{stats.get('live_samples', stats.get('samples', '?'))} live samples")
        return text + "; its CPU cost is measured side by side in bench/hook_overhead.py (docs/hook.md)"
    if mode == "tracemalloc":
        frames = end.get("tracemalloc_frames") or health.get("tracemalloc_frames")
        text = (f"allocation tracking: tracemalloc{f' with {frames} frame(s)' if frames else ''}: exact, "
                "but it slows an engine 2-4x (docs/hook.md)")
        return text + (f" ({why})" if why else "")
    if mode == "off":
        return "allocation tracking: off (no allocation sites named)"
    return None


def _requests(run: RunData) -> list[dict[str, Any]]:
    if run.requests:
        return run.requests
    last = run.rows[-1] if run.rows else {}
    failures = last.get("failures_by_name") or {}
    return [{"method": key.split(" ", 1)[0], "name": key.split(" ", 1)[-1], "num_requests": n,
             "num_failures": failures.get(key, 0)} for key, n in (last.get("requests_by_name") or {}).items()]


def analyze(run: RunData, settings: dict[str, Any] | None = None) -> Report:
    values = resolve(run.run_json.get("settings"), settings)
    rows = run.rows
    t_all = row_times(rows)
    events = _events(run)
    warmup_event_s = events.get("warmup_end", {}).get("t")
    counts_all = op_series(rows)
    specs = [SPECS["rss"]]
    if any((row.get("tree_procs") or 0) > 1 for row in rows):
        specs.append(SPECS["tree_rss"])   # with one process it repeats RSS
    mode = alloc_mode(run)
    sampled_floor = sampled_heap_floor_mb(run) if mode == "sampled" else None
    if sampled_floor is not None and sampled_floor > values.heap_min_growth_mb:
        values = values.replace(heap_min_growth_mb=sampled_floor)
    heap = _heap_spec(rows, mode)
    if heap:
        specs.append(heap)
    specs += [SPECS[name] for name in ("gc_objects", "open_fds", "threads", "asyncio_tasks")]
    # A sampled-mode snapshot reads the tracker's table: no tracemalloc start, no step to remove.
    snapshot_times = [float(e["t"]) for e in run.events
                      if e.get("type") == "snapshot" and e.get("t") is not None and mode != "sampled"]
    label_t = {str(e.get("label")): float(e["t"]) for e in run.events
               if e.get("type") == "snapshot" and e.get("t") is not None}
    wall0 = events.get("test_start", {}).get("t_wall")
    net_heap = net_growth(run.diffs, label_t, float(wall0) if wall0 is not None else None)
    signals = [s for s in (analyse_signal(spec, rows, t_all, values, warmup_event_s, counts_all, snapshot_times,
                                          net_heap) for spec in specs) if s is not None]
    by_name = {s.name: s for s in signals}
    if sampled_floor is not None and "heap" in by_name:
        by_name["heap"].resolution = sampled_floor * MB   # the sampler's granularity (sampled_heap_floor_mb)
    health = hook_health(run)
    engine = tuple(str(p) for p in health.get("engine_packages") or [] if isinstance(p, str))
    sites = rank_sites(run.diffs, values.top_n, engine)
    fuse_sites(by_name.get("heap"), sites, net_heap, values)
    memory = decide_memory([(s.name, s.verdict) for s in signals], DRIVER_ORDER)
    driver = memory.driver
    undecided = [by_name[n] for n in memory.undecided]
    notes = []
    if run.skipped_lines:
        notes.append(f"{run.skipped_lines} unreadable line(s) in series.jsonl skipped (a killed writer)")
    rss, heap_report = by_name.get("rss"), by_name.get("heap")
    notes += diagnosis(rss, heap_report, values)
    tracking = alloc_note(run, events)
    if tracking:
        notes.append(tracking + (f"; the heap's growth floor is {SAMPLED_FLOOR_SAMPLES} samples, "
                                 f"{values.heap_min_growth_mb:.2f} MB" if sampled_floor else ""))
    if heap_report and heap_report.unit == "bytes" and rss and mode != "sampled":
        notes.append("tracemalloc was on: its own tables (~50 B per live block) count in RSS")
    rss_values = [(t, float(row["rss_bytes"])) for t, row in zip(t_all, rows) if row.get("rss_bytes") is not None]
    legacy = (legacy_verdict(np.array([p[0] for p in rss_values]), np.array([p[1] for p in rss_values]),
                             values.growth_threshold_mb, values.rate_threshold_mb_per_hour)
              if len(rss_values) >= 2 else None)
    # the harness's rule (tree RSS when measured): a run stored without the event still ends at the limit
    rss_over = (any(over_rss_limit(row, values.rss_limit_mb) is not None for row in rows)
                and "rss_limit" not in events)
    if rss_over:
        notes.append(f"RSS exceeded rss_limit_mb={values.rss_limit_mb:g} in the recorded samples")
    result = outcomes.decide(engine_lost="engine_lost" in events, rss_limit="rss_limit" in events or rss_over,
                             leak=driver is not None, inconclusive=bool(undecided))
    run_id = str(run.run_json.get("run_id") or run.run_dir.name)
    headline = _headline(result, driver, by_name, events, undecided)
    seqs = [row.get("seq") for row in rows if row.get("seq") is not None]
    report = Report(
        run_id=run_id, run_dir=str(run.run_dir),
        generated_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        settings=values, outcome=result, exit_code=outcomes.exit_code(result),
        verdict=memory.verdict, driver=driver, headline=headline,
        duration_s=float(np.nanmax(t_all) - np.nanmin(t_all)) if len(t_all) else 0.0,
        samples=len(rows), first_seq=seqs[0] if seqs else None, last_seq=seqs[-1] if seqs else None,
        signals=signals, legacy=legacy, events=events, requests=_requests(run),
        sites=sites,
        types=rank_types(run.type_diffs, values.top_n),
        resources=resource_growth(rows, values.top_n),
        memray_files=run.memray_files,
        notes=notes + ([MEMRAY_NOTE] if run.memray_files else []),
        snapshots=[(float(e["t"]), str(e.get("label", ""))) for e in run.events
                   if e.get("type") == "snapshot" and e.get("t") is not None],
        rows=rows,
    )
    return evidence.assess(report, run)   # load, interruption, missing rows, too few samples


def _headline(result: str, driver: str | None, by_name: dict[str, SignalReport],
              events: dict[str, Any], undecided: list[SignalReport] | None = None) -> str:
    if result == "engine_lost":
        lost = events.get("engine_lost", {})
        err = f": {lost['error']}" if lost.get("error") else ""
        last = f" (last sample seq {lost['last_seq']})" if lost.get("last_seq") is not None else ""
        return f"ENGINE LOST: the hook stopped answering{err}{last}"
    if result == "rss_limit":
        return "RSS LIMIT: the engine's RSS passed the limit and the test was stopped"
    if driver:
        sig = by_name[driver]
        return f"LEAK in {sig.label} (driven by {sig.evidence or 'the series'}): {sig.reason}"
    if undecided:
        sig = undecided[0]
        return f"INCONCLUSIVE in {sig.label}: {sig.reason}"
    plateaus = [s.label for s in by_name.values() if s.verdict == Verdict.PLATEAU]
    return "PASS: no signal leaks" + (f" (plateau: {', '.join(plateaus)})" if plateaus else "")
