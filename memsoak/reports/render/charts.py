"""Charts for report.html: matplotlib rendered to inline SVG, no network, small.

Series are downsampled to `chart_points` per line (min/max per bucket would double the points; a
stride keeps the file small and the shape honest enough at this resolution).
"""
from __future__ import annotations

import io
import re
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..verdict.analysis import row_times  # noqa: E402
from ..verdict.legacy import MB  # noqa: E402
from ..verdict.model import Report  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"   # text stays text: far smaller than glyph paths


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in rows])


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]   # drop the XML prolog and DOCTYPE (it names a URL)
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)   # RDF boilerplate with URLs


def _memory_panel(ax: Any, t_min: np.ndarray, rows: list[dict[str, Any]], report: Report,
                  name: str, fields: list[tuple[str, str]]) -> None:
    for field, label in fields:
        values = _column(rows, field)
        if np.isfinite(values).any():
            ax.plot(t_min, values / MB, lw=1, label=label)
    sig = report.signal(name)
    if sig and sig.trend:
        # The fitted Theil-Sen line over the analysed window, anchored at its end level, with the
        # snapshot steps that were removed before the fit added back so it sits on the data.
        end = float(np.nanmax(t_min)) * 60.0
        xs = np.linspace(sig.warmup.end_s, end, 200)
        removed = sum(step for _, step in sig.steps)
        ys = sig.trend.level_end + removed - sig.trend.slope_per_h * (end - xs) / 3600.0
        for ts, step in sig.steps:
            ys = ys - step * (xs < ts)
        ax.plot(xs / 60.0, ys / MB, "--", lw=1.5, color="black",
                label=f"trend {sig.trend.slope_per_h / MB:+.2f} MB/h ({sig.verdict})")
    if sig and sig.warmup.end_s > float(np.nanmin(t_min)) * 60.0:
        ax.axvline(sig.warmup.end_s / 60.0, color="grey", ls=":", lw=1, label="warm-up end")
    ax.set_ylabel("MB")
    ax.legend(loc="upper left", fontsize=7)


def timeline(report: Report) -> str:
    rows = report.rows
    stride = max(1, len(rows) // max(report.settings.chart_points, 10))
    rows = rows[::stride]
    t = row_times(rows) / 60.0
    heap = report.signal("heap")
    traced = heap is not None and heap.unit == "bytes"
    panels = 5 if traced else 4
    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.1 * panels), sharex=True)
    rss_fields = [("rss_bytes", "RSS")] + ([("tree_rss_bytes", "tree RSS")] if report.signal("tree_rss") else [])
    _memory_panel(axes[0], t, rows, report, "rss", rss_fields)
    axes[0].set_title("RSS", fontsize=9, loc="left")
    if traced:
        _memory_panel(axes[1], t, rows, report, "heap", [("traced_current_bytes", heap.label)])
        axes[1].set_title(heap.label, fontsize=9, loc="left")
    load, latency, failures = axes[-3], axes[-2], axes[-1]
    load.plot(t, _column(rows, "users"), lw=1, label="users")
    load.set_ylabel("users")
    rps = load.twinx()
    rps.plot(t, _column(rows, "rps"), color="tab:orange", lw=1, label="RPS")
    rps.set_ylabel("RPS")
    load.legend(handles=load.get_lines() + rps.get_lines(), loc="upper left", fontsize=7)
    latency.plot(t, _column(rows, "p95_ms"), lw=1)
    latency.set_ylabel("p95 ms")
    failures.plot(t, _column(rows, "fail_per_s"), color="tab:red", lw=1)
    failures.set_ylabel("failures/s")
    failures.set_xlabel("minutes since start (triangles: tracemalloc snapshots)")
    for ts, _label in report.snapshots:
        axes[0].plot([ts / 60.0], [0], marker="v", color="tab:purple", transform=axes[0].get_xaxis_transform(),
                     clip_on=False)
    fig.tight_layout()
    return _svg(fig)


def memory_vs_requests(report: Report) -> str | None:
    rows = [row for row in report.rows if row.get("requests_total") is not None]
    if len(rows) < 2:
        return None
    stride = max(1, len(rows) // max(report.settings.chart_points, 10))
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
