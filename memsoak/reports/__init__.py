"""memsoak reports: pure analysis and rendering. Rows in, a Report out; no network, no Locust.

Three layers, each importing only the ones before it (but MB, in verdict/legacy.py until the contract
module holds it): stats/ (series in, numbers out), verdict/
(numbers in, decisions and the Report out), render/ (a Report in, text and files out). settings.py,
outcome.py and rundata.py, which every layer and the harness read, stay at the top.

    run = reports.load_run("results/20261126-050000-ab12")
    report = reports.analyze(run)                # report.outcome, report.exit_code
    reports.write_reports(report, run.run_dir)   # report.json, report.html, summary.md, junit.xml
    print(reports.render_console(report))
"""
from __future__ import annotations

from .outcome import EXIT_CODES, PRECEDENCE
from .render.render_console import render_console
from .render.writer import write_reports
from .rundata import RunData, RunDirError, load_run
from .settings import SETTINGS, Setting, SettingError
from .stats.live import live_trend
from .verdict.analysis import analyze
from .verdict.compare import Comparison, compare, render_comparison
from .verdict.model import Report, SignalReport
from .verdict.verdicts import Verdict

__all__ = [
    "EXIT_CODES", "PRECEDENCE", "SETTINGS", "Comparison", "Report", "RunData", "RunDirError",
    "Setting", "SettingError", "SignalReport", "Verdict", "analyze", "compare", "live_trend", "load_run",
    "render_comparison", "render_console", "write_reports",
]
