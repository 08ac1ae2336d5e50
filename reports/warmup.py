"""Where the warm-up ends: the ramp of users and the settling of memory (caches fill, arenas grow).

The `warmup_s` setting wins when non-negative. Otherwise the cut starts at the later of the end
of the user ramp and the `warmup_end` event the harness recorded (its baseline snapshot), and moves
on to a change point in the memory series after it, found by ruptures (continuous piecewise-linear
cost, one break) and accepted only when memory rose clearly faster before it than after it.
A fill that approaches its level exponentially (a bounded cache) is still rising at that break, so
the cut then moves on to where what is left of the fill (line + exponential tail fitted after the
break, its amplitude significant under AR(1) noise) no longer biases the window's slope by half a
standard error: the curvature left otherwise reads as autocorrelation and hides a leak on top of
the cache, or, cut at a fixed share of the noise, tilts a clean cache's slope (docs/analysis.md).
Detection never cuts more than `max_fraction` of the run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import ruptures

from .trend import block_means, persistence

MAX_POINTS = 200   # change-point search on block means: cost grows fast with length
TAIL_T = 4.0            # a fill's tail counts when its amplitude is this many standard errors
TAIL_BIAS = 0.5          # cut where what is left of the tail moves the slope by < this many s.e.
TAU_GRID = 40            # time constants tried for the tail, log-spaced


@dataclass
class WarmupCut:
    end_s: float
    method: str    # "setting" | "event" | "ramp" | "change_point" | "none"
    detail: str


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])


def ramp_end(t: np.ndarray, users: Sequence[Any]) -> float | None:
    values = np.array([u if u is not None else np.nan for u in users], dtype=float)
    if not np.isfinite(values).any() or np.nanmax(values) <= 0:
        return None
    reached = np.nonzero(values >= 0.95 * np.nanmax(values))[0]
    return float(t[reached[0]]) if len(reached) else None


def change_point(t: np.ndarray, y: np.ndarray, max_fraction: float) -> float | None:
    """End of a fast early rise, or None when the series has none."""
    if len(y) < 12:
        return None
    bx, by = block_means(t, y, MAX_POINTS)
    try:
        # Continuous piecewise-linear cost: a ramp that bends into a flat (or slower) line.
        algo = ruptures.Binseg(model="clinear", min_size=3, jump=1).fit(by)
        cut = algo.predict(n_bkps=1)[0]
    except Exception:  # ruptures raises on degenerate (flat, tiny) series; no cut then
        return None
    if cut <= 2 or cut >= len(by) - 2 or bx[cut] - bx[0] > max_fraction * (bx[-1] - bx[0]):
        return None
    before = _slope(bx[:cut + 1], by[:cut + 1])
    after = _slope(bx[cut:], by[cut:])
    rise = before * (bx[cut] - bx[0])
    resid = by[cut:] - np.polyval(np.polyfit(bx[cut:], by[cut:], 1), bx[cut:])
    noise = float(np.std(resid)) if len(resid) > 2 else 0.0
    if before > 0 and before > 3 * max(after, 0.0) and rise > 3 * noise:
        return float(bx[cut])
    return None


@dataclass
class Tail:
    amplitude: float   # what was left of the fill at the change point, y units
    tau_s: float       # its time constant
    noise: float       # residual sd of the samples around line + tail
    cut_s: float       # from here on, the tail biases the window's OLS slope by < TAIL_BIAS s.e.
    left: float        # what is left of the tail there, y units


def fill_tail(t: np.ndarray, y: np.ndarray, start: float) -> Tail | None:
    """A fill still approaching its level after `start`: line - amplitude * exp(-(t - start) / tau).

    The clinear break of a fill that approaches its level exponentially lands near 2.5 time
    constants, with ~8% of the fill still to come; that curvature, left in the window, reads as
    strong autocorrelation and starves the trend test. tau is chosen on a grid over block means
    (for a given tau the fit is linear); the amplitude is then refitted on the samples and must
    stand TAIL_T standard errors above zero, its variance inflated by the AR(1) persistence of the
    residuals: slow noise bends a line as easily as a fill does, and a long tau is nearly collinear
    with the line's own slope.
    """
    keep = t >= start
    tr, yr = t[keep], y[keep]
    if len(yr) < 12:
        return None
    bx, by = block_means(tr, yr, MAX_POINTS)
    span = float(bx[-1] - bx[0])
    if span <= 0:
        return None
    best: tuple[float, float] | None = None
    for tau in np.geomspace(span / max(len(bx) - 1, 1), span / 4, TAU_GRID):
        design = np.column_stack([np.ones_like(bx), bx - start, np.exp(-(bx - start) / tau)])
        coef, *_ = np.linalg.lstsq(design, by, rcond=None)
        sse = float(np.sum((by - design @ coef) ** 2))
        if best is None or sse < best[0]:
            best = (sse, float(tau))
    assert best is not None
    tau = best[1]
    design = np.column_stack([np.ones_like(tr), tr - start, np.exp(-(tr - start) / tau)])
    coef, *_ = np.linalg.lstsq(design, yr, rcond=None)
    resid = yr - design @ coef
    ss = float(resid @ resid)
    amplitude = -float(coef[2])   # a rise that slows: the exponential term comes in negative
    noise = math.sqrt(ss / len(yr))
    if noise <= 0 or amplitude <= 0:
        return None
    phi = persistence(resid)
    n_eff = len(yr) * (1 - phi) / (1 + phi)
    var = float(np.linalg.pinv(design.T @ design)[2, 2]) * ss / max(n_eff - 3, 0.5)
    if amplitude < TAIL_T * math.sqrt(max(var, 0.0)):
        return None
    cut = _unbiased_from(tr, start, amplitude, tau, noise)
    return Tail(amplitude, tau, noise, cut, amplitude * math.exp(-(cut - start) / tau))


def _unbiased_from(t: np.ndarray, start: float, amplitude: float, tau: float, noise: float) -> float:
    """The first sample time from which the tail left biases the OLS slope by < TAIL_BIAS s.e.

    A tail -A*exp(-x) in a window tilts its OLS slope up by A*cov(x, -exp(-x))/var(x), against a
    standard error noise/sqrt(Sxx) (white noise; autocorrelated noise only widens it). Cutting at
    a fixed share of the noise is not enough: at half a noise sd, a 10-minute tail still moved a
    4-hour window's slope by ~2 s.e. and the trend test called 20% of clean caches significant.
    Suffix sums give every candidate window at once.
    """
    x = (t - start) / tau
    g = np.exp(-x)
    rev = lambda v: np.cumsum(v[::-1])[::-1]   # noqa: E731 - sums over each suffix t[i:]
    m = rev(np.ones_like(x))
    sx, sxx, sg, sxg = rev(x), rev(x * x), rev(g), rev(x * g)
    spread = np.maximum(sxx - sx * sx / m, 1e-300)
    ratio = amplitude * (sx * sg / m - sxg) / (noise * np.sqrt(spread))   # the tail is -A*g
    ok = np.nonzero((ratio <= TAIL_BIAS) & (m >= 12))[0]
    return float(t[ok[0]]) if len(ok) else float(t[-1])


def find_warmup(t: np.ndarray, y: np.ndarray, users: Sequence[Any] | None, *,
                warmup_s: float, event_s: float | None, max_fraction: float) -> WarmupCut:
    t0 = float(t[0]) if len(t) else 0.0
    if warmup_s >= 0:
        return WarmupCut(t0 + warmup_s if warmup_s < t0 else warmup_s, "setting",
                         f"warmup_s={warmup_s:g} set by the user")
    limit = t0 + max_fraction * (float(t[-1]) - t0) if len(t) else t0
    start = t0
    method, detail = "none", "no ramp or settling found"
    ramp = ramp_end(t, users) if users is not None else None
    if ramp is not None and ramp > t0:
        start = min(ramp, limit)
        method, detail = "ramp", f"users reached their plateau at t={start:.0f}s"
    if event_s is not None and event_s > start:
        # The harness took its baseline snapshot here; memory may still settle after it.
        start = min(event_s, limit)
        method, detail = "event", f"warmup_end event recorded by the harness at t={start:.0f}s"
    keep = t >= start
    cp = change_point(t[keep], y[keep], max_fraction) if keep.sum() >= 12 else None
    if cp is not None and cp <= limit:
        detail = f"memory rise slowed at t={cp:.0f}s (ruptures, clinear)"
        tail = fill_tail(t, y, cp)
        if tail is not None and tail.cut_s > cp:
            end = min(tail.cut_s, limit)
            detail += (f"; the fill's tail ({tail.amplitude / tail.noise:.1f} noise sd left, time constant "
                       f"{tail.tau_s:.0f}s) is down to {tail.left / tail.noise:.2f} noise sd at t={tail.cut_s:.0f}s "
                       f"(slope bias < {TAIL_BIAS:g} s.e.)"
                       + ("" if end == tail.cut_s else f"; capped at t={end:.0f}s (warmup_max_fraction)"))
            return WarmupCut(end, "change_point", detail)
        return WarmupCut(cp, "change_point", detail)
    return WarmupCut(start, method, detail)
