"""Where the warm-up ends: the ramp of users and the settling of memory (caches fill, arenas grow).

The `warmup_s` setting wins when non-negative. Otherwise the cut starts at the later of the end
of the user ramp and the `warmup_end` event the harness recorded (its baseline snapshot), and moves
on to a change point in the memory series after it, found by ruptures (continuous piecewise-linear
cost, one break) and accepted only when memory rose clearly faster before it than after it.
Detection never cuts more than `max_fraction` of the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import ruptures

from .trend import block_means

MAX_POINTS = 200   # change-point search on block means: cost grows fast with length


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
        return WarmupCut(cp, "change_point", f"memory rise slowed at t={cp:.0f}s (ruptures, clinear)")
    return WarmupCut(start, method, detail)
