"""The original spec's method, kept for continuity and shown side by side with memsoak's verdict.

All RSS samples, no warm-up cut: min/max/average, the average of the first and of the last 10% of
samples, their difference (MB and %), an OLS slope in MB/hour, and a leak when the growth exceeds
`growth_threshold_mb` or the slope exceeds `rate_threshold_mb_per_hour`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsoak.contract import MB  # noqa: F401  (re-exported: memsoak/reports/ reads MB from here)


@dataclass
class LegacyFigures:
    samples: int
    min_mb: float
    max_mb: float
    avg_mb: float
    early_avg_mb: float
    late_avg_mb: float
    growth_mb: float
    growth_pct: float
    ols_mb_per_hour: float
    growth_threshold_mb: float
    rate_threshold_mb_per_hour: float
    leak: bool
    reason: str


def legacy_verdict(t_s: np.ndarray, rss_bytes: np.ndarray, growth_threshold_mb: float,
                   rate_threshold_mb_per_hour: float) -> LegacyFigures:
    mb = np.asarray(rss_bytes, float) / MB
    n = len(mb)
    tenth = max(1, n // 10)
    early, late = float(mb[:tenth].mean()), float(mb[-tenth:].mean())
    growth = late - early
    hours = np.asarray(t_s, float) / 3600.0
    slope = float(np.polyfit(hours, mb, 1)[0]) if n >= 2 and np.ptp(hours) > 0 else 0.0
    reasons = []
    if growth > growth_threshold_mb:
        reasons.append(f"growth {growth:.1f} MB > {growth_threshold_mb:g} MB")
    if slope > rate_threshold_mb_per_hour:
        reasons.append(f"slope {slope:.1f} MB/h > {rate_threshold_mb_per_hour:g} MB/h")
    return LegacyFigures(
        samples=n, min_mb=float(mb.min()), max_mb=float(mb.max()), avg_mb=float(mb.mean()),
        early_avg_mb=early, late_avg_mb=late, growth_mb=growth,
        growth_pct=100.0 * growth / early if early else 0.0, ols_mb_per_hour=slope,
        growth_threshold_mb=growth_threshold_mb,
        rate_threshold_mb_per_hour=rate_threshold_mb_per_hour,
        leak=bool(reasons), reason="; ".join(reasons) or "below both thresholds",
    )
