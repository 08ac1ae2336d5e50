"""memsoak reports: pure analysis and rendering. Rows in, a Report out; no network, no Locust.

    run = reports.load_run("results/20261126-050000-ab12")
    report = reports.analyze(run)                # report.outcome, report.exit_code
    reports.write_reports(report, run.run_dir)   # report.json, report.html, summary.md, junit.xml
    print(reports.render_console(report))
"""
from __future__ import annotations

from .analysis import analyze
from .compare import Comparison, compare, render_comparison
from .live import live_trend
from .model import Report, SignalReport
from .outcome import EXIT_CODES, PRECEDENCE
from .render_console import render_console
from .rundata import RunData, RunDirError, load_run
from .settings import SETTINGS, Setting, SettingError
from .writer import write_reports

__all__ = [
    "EXIT_CODES", "PRECEDENCE", "SETTINGS", "Comparison", "Report", "RunData", "RunDirError",
    "Setting", "SettingError", "SignalReport", "analyze", "compare", "live_trend", "load_run",
    "render_comparison", "render_console", "write_reports",
]
