"""A short verdict table for the terminal."""
from __future__ import annotations

from .legacy import MB
from .model import Report, SignalReport


def _amount(sig: SignalReport) -> str:
    if sig.trend is None:
        return "-"
    if sig.unit == "bytes":
        return f"{sig.trend.slope_per_h / MB:+.2f} MB/h [{sig.trend.ci_low_per_h / MB:+.2f}, {sig.trend.ci_high_per_h / MB:+.2f}]"
    return f"{sig.trend.growth:+.0f} {sig.unit}"


def render_console(report: Report) -> str:
    lines = [f"memsoak {report.run_id}: {report.outcome.upper()} (exit {report.exit_code})",
             report.headline, ""]
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
