"""Charts for report.html: matplotlib rendered to inline SVG, no network, small.

Series are downsampled to `chart_points` per line (min/max per bucket would double the points; a
stride keeps the file small and the shape honest enough at this resolution).
"""
from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .analysis import row_times  # noqa: E402
from .legacy import MB  # noqa: E402
from .model import Report  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"   # text stays text: far smaller than glyph paths


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in rows])


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]   # drop the XML prolog and DOCTYPE (it names a URL)


def timeline(report: Report) -> str:
    rows = report.rows
    stride = max(1, len(rows) // max(int(report.settings["chart_points"]), 10))
    rows = rows[::stride]
    t = row_times(rows) / 60.0
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    mem = axes[0]
    mem.plot(t, _column(rows, "rss_bytes") / MB, label="RSS", lw=1)
    heap = report.signal("heap")
    if heap and heap.unit == "bytes":
        mem.plot(t, _column(rows, "traced_current_bytes") / MB, label="Python heap (traced)", lw=1)
    for sig in (report.signal("rss"), heap if heap and heap.unit == "bytes" else None):
        if sig and sig.trend:
            start = sig.warmup.end_s
            end = float(np.nanmax(t)) * 60.0
            level = sig.trend.level_end
            xs = np.array([start, end])
            ys = level - sig.trend.slope_per_h * (end - xs) / 3600.0
            mem.plot(xs / 60.0, ys / MB, "--", lw=1.5, label=f"{sig.label} trend")
    rss = report.signal("rss")
    if rss and rss.warmup.end_s > 0:
        for ax in axes:
            ax.axvline(rss.warmup.end_s / 60.0, color="grey", ls=":", lw=1)
    mem.set_ylabel("MB")
    mem.legend(loc="upper left", fontsize=7)
    axes[1].plot(t, _column(rows, "users"), label="users", lw=1)
    rps = axes[1].twinx()
    rps.plot(t, _column(rows, "rps"), color="tab:orange", label="RPS", lw=1)
    axes[1].set_ylabel("users")
    rps.set_ylabel("RPS")
    axes[2].plot(t, _column(rows, "p95_ms"), lw=1)
    axes[2].set_ylabel("p95 ms")
    axes[3].plot(t, _column(rows, "fail_per_s"), color="tab:red", lw=1)
    axes[3].set_ylabel("failures/s")
    axes[3].set_xlabel("minutes since start (dotted: warm-up end)")
    fig.tight_layout()
    return _svg(fig)


def memory_vs_requests(report: Report) -> str | None:
    rows = [row for row in report.rows if row.get("requests_total") is not None]
    if len(rows) < 2:
        return None
    stride = max(1, len(rows) // max(int(report.settings["chart_points"]), 10))
    rows = rows[::stride]
    fig, ax = plt.subplots(figsize=(10, 3))
    requests = _column(rows, "requests_total")
    ax.plot(requests, _column(rows, "rss_bytes") / MB, lw=1, label="RSS")
    heap = report.signal("heap")
    if heap and heap.unit == "bytes":
        ax.plot(requests, _column(rows, "traced_current_bytes") / MB, lw=1, label="Python heap")
    ax.set_xlabel("cumulative requests")
    ax.set_ylabel("MB")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return _svg(fig)
