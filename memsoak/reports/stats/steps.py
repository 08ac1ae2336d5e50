"""Remove the memory steps that the harness's own tracemalloc snapshots cause.

Taking a snapshot (and diffing it) costs the engine memory: on the demo engine ~0.7 MB of heap and
~26 MB of RSS per snapshot, as a step at that moment. With checkpoints through the run those steps
look exactly like a leak. The snapshot times are known (`snapshot` events), so each step is
estimated jointly with the common slope (OLS with one level shift per snapshot, on the samples
outside a guard window around it) and subtracted from the samples after it; the samples inside the
guard windows (the snapshot in progress, its transient peak) are left out of the analysis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepRemoval:
    keep: np.ndarray        # samples outside every guard window
    adjusted: np.ndarray    # the series with the estimated steps subtracted
    steps: list[tuple[float, float]]   # (snapshot time, estimated step)
    shifts: np.ndarray      # one 0/1 level-shift column per step, for the joint trend test

    @property
    def total(self) -> float:
        return float(sum(step for _, step in self.steps))


def remove_snapshot_steps(t: np.ndarray, y: np.ndarray, snapshot_times: list[float],
                          guard_s: float) -> StepRemoval:
    t = np.asarray(t, float)
    y = np.asarray(y, float)
    nothing = StepRemoval(np.ones(len(y), bool), y, [], np.zeros((len(y), 0)))
    if guard_s <= 0 or len(y) < 12:
        return nothing
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    guard = max(guard_s, 3 * dt)
    # The event is logged when the snapshot returned: the step starts seconds before it, and the
    # diff fetched right after it leaves a transient peak behind it.
    times = sorted(ts for ts in snapshot_times if t[0] + guard < ts < t[-1] - guard)
    if not times:
        return nothing
    keep = np.ones(len(y), bool)
    for ts in times:
        keep &= ~((t >= ts - guard) & (t <= ts + guard))
    shifts = np.column_stack([(t >= ts).astype(float) for ts in times])
    design = np.column_stack([np.ones(len(t)), (t - t[0]) / 3600.0, shifts])
    usable = keep.copy()
    # Each level needs samples on both sides of it, or its step is not estimable.
    if any(not ((usable & (t < ts)).any() and (usable & (t >= ts)).any()) for ts in times):
        return nothing
    coef, *_ = np.linalg.lstsq(design[usable], y[usable], rcond=None)
    steps = [(ts, float(step)) for ts, step in zip(times, coef[2:])]
    adjusted = y - shifts @ coef[2:]
    return StepRemoval(keep, adjusted, steps, shifts)
