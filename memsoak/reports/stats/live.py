"""live_trend(): a cheap summary for the live Memory tab (called every poll; no tests, no fits
beyond one least-squares line on the most recent samples)."""
from __future__ import annotations

from typing import Any

import numpy as np

from memsoak.contract import MB

LIVE_WINDOW = 2000   # rows: bounded cost per call whatever the run length


def _line(t: np.ndarray, y: np.ndarray) -> float | None:
    if len(y) < 3 or np.ptp(t) <= 0:
        return None
    return float(np.polyfit(t / 3600.0, y, 1)[0]) / MB


def live_trend(rows: list[dict[str, Any]]) -> dict[str, Any]:
    recent = [row for row in rows[-LIVE_WINDOW:] if row.get("rss_bytes") is not None and row.get("t") is not None]
    out: dict[str, Any] = {"samples": len(rows), "rss_mb": None, "rss_slope_mb_per_hour": None,
                           "rss_growth_mb": None, "heap_mb": None, "heap_slope_mb_per_hour": None}
    if not recent:
        return out
    t = np.array([float(row["t"]) for row in recent])
    rss = np.array([float(row["rss_bytes"]) for row in recent])
    tenth = max(1, len(rss) // 10)
    out["rss_mb"] = float(rss[-1]) / MB
    out["rss_slope_mb_per_hour"] = _line(t, rss)
    out["rss_growth_mb"] = float(rss[-tenth:].mean() - rss[:tenth].mean()) / MB
    heap = [(tt, float(row["traced_current_bytes"])) for tt, row in zip(t, recent)
            if row.get("traced_current_bytes") is not None]
    if heap:
        ht = np.array([p[0] for p in heap])
        hy = np.array([p[1] for p in heap])
        out["heap_mb"] = float(hy[-1]) / MB
        out["heap_slope_mb_per_hour"] = _line(ht, hy)
    return out
