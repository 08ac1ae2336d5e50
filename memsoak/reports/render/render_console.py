"""A short verdict table for the terminal."""
from __future__ import annotations

from ..outcome import title
from ..verdict.legacy import MB
from ..verdict.model import Report, SignalReport


def _amount(sig: SignalReport) -> str:
    if sig.trend is None:
        return "-"
    if sig.unit == "bytes":
        return f"{sig.trend.slope_per_h / MB:+.2f} MB/h [{sig.trend.ci_low_per_h / MB:+.2f}, {sig.trend.ci_high_per_h / MB:+.2f}]"
    return f"{sig.trend.growth:+.0f} {sig.unit}"


def render_console(report: Report) -> str:
    lines = [f"memsoak {report.run_id}: {title(report.outcome)} (exit {report.exit_code})",
             report.headline]
    for problem in report.problems:
        if problem["outcome"] != report.outcome:
            lines.append(f"also {title(problem['outcome'])} (exit {problem['exit_code']}): {problem['reason']}")
    load = report.load or {}
    if load.get("failures"):
        lines.append(f"failed requests: {load['failures']}/{load['requests']} "
                     f"({100 * load['ratio']:.2f}%, limit {100 * load['max_ratio']:.2f}%)")
        for item in load.get("failures_by_name", [])[:8]:
            status = f"HTTP {item['status']}" if item.get("status") else "-"
            lines.append(f"  {item['request']}: {status} x{item['count']} ({item['error'][:120]})")
    lines.append("")
    lines.append(f"{'signal':<32} {'verdict':<12} trend")
    for sig in report.signals:
        mark = " <- driver" if sig.name == report.driver else ""
        lines.append(f"{sig.label:<32} {sig.verdict:<12} {_amount(sig)}{mark}")
    if report.legacy:
        leg = report.legacy
        lines.append(f"{'original method (RSS)':<32} {'leak' if leg.leak else 'pass':<12} "
                     f"growth {leg.growth_mb:+.1f} MB, OLS {leg.ols_mb_per_hour:+.2f} MB/h")
    if report.sites:
        top = report.sites[0]
        called = f", engine frame {top.engine_frame}" if top.engine_frame and top.engine_frame != top.key else ""
        lines.append(f"top allocation site: {top.key} (+{top.growth / 1024:.1f} KiB, grew in "
                     f"{top.intervals_grown}/{top.intervals} intervals{called})")
    return "\n".join(lines)
