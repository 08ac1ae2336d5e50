"""The renderers: valid JSON, parseable JUnit XML, self-contained HTML, Markdown, console."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from memsoak import reports
import reports_synth as synth


@pytest.fixture
def leaky_run(tmp_path):
    t = np.arange(720) * 5.0
    rng = np.random.default_rng(31)
    rss = synth.clean("ar1", rng, t) + 30 * t / 3600
    heap = 40 + 25 * t / 3600 + rng.normal(0, 0.02, len(t))
    diffs = {
        "diff-warmup--cp1.json": synth.diff("warmup", "cp1", ("2026-01-01T00:01", "2026-01-01T00:02"),
                                            [synth.site("memsoak/demo_engine/leaks.py", 42, 64000), synth.site("a.py", 3, 90000)]),
        "diff-cp1--final.json": synth.diff("cp1", "final", ("2026-01-01T00:02", "2026-01-01T00:03"),
                                           [synth.site("memsoak/demo_engine/leaks.py", 42, 64000), synth.site("a.py", 3, -90000)]),
    }
    requests = [{"method": "POST", "name": "/api/engine/chat/sessions", "num_requests": 10, "num_failures": 2,
                 "median_ms": 20, "p95_ms": 40, "p99_ms": 50, "avg_ms": 22, "rps": 1.0, "failures": {"429 Too Many": 2}}]
    return synth.write_run(tmp_path / "leaky", synth.make_rows(t, rss, heap_mb=heap), diffs=diffs, requests=requests)


def test_write_reports_produces_every_file_and_they_parse(leaky_run):
    report = reports.analyze(reports.load_run(leaky_run))
    written = reports.write_reports(report, leaky_run)
    assert set(written) == {"report.json", "report.html", "summary.md", "junit.xml"}
    data = json.loads((leaky_run / "report.json").read_text())
    assert data["outcome"] == "leak" and data["exit_code"] == 10 and data["samples"] == 720
    assert "rows" not in data and {s["name"] for s in data["signals"]} >= {"rss", "heap", "open_fds"}
    assert data["sites"][0]["key"] == "memsoak/demo_engine/leaks.py:42" and data["sites"][0]["consistent"]
    assert all("memsoak/profiler/" not in frame for frame in data["sites"][0]["traceback"])


def test_junit_has_one_case_per_check_and_a_leak_is_a_failure(leaky_run):
    report = reports.analyze(reports.load_run(leaky_run))
    reports.write_reports(report, leaky_run)
    suite = ET.parse(leaky_run / "junit.xml").getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {"run.engine_lost", "run.rss_limit", "signal.rss", "signal.heap"} <= set(cases)
    assert cases["signal.heap"].find("failure") is not None
    assert cases["run.engine_lost"].find("failure") is None
    assert int(suite.get("failures")) >= 1 and int(suite.get("tests")) == len(cases)


def test_html_is_self_contained(leaky_run):
    report = reports.analyze(reports.load_run(leaky_run))
    reports.write_reports(report, leaky_run)
    html = (leaky_run / "report.html").read_text()
    assert "<svg" in html and "memsoak/demo_engine/leaks.py:42" in html and "429 Too Many" in html
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?https?://", html, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?https?://", html, re.I)


@pytest.mark.slow
def test_html_stays_small_for_a_24h_run(tmp_path):
    t = np.arange(17280) * 5.0
    rss = synth.clean("white", np.random.default_rng(2), t)
    run_dir = synth.write_run(tmp_path / "day", synth.make_rows(t, rss, heap_mb=rss / 4))
    reports.write_reports(reports.analyze(reports.load_run(run_dir)), run_dir)
    assert (run_dir / "report.html").stat().st_size < 1.5 * 1024 * 1024


def test_markdown_and_console_name_the_verdict_and_driver(leaky_run):
    report = reports.analyze(reports.load_run(leaky_run))
    reports.write_reports(report, leaky_run)
    summary = (leaky_run / "summary.md").read_text()
    assert summary.startswith("## memsoak: LEAK (exit 10)") and "**(driver)**" in summary
    console = reports.render_console(report)
    assert "LEAK" in console and "<- driver" in console and "original method" in console


def test_live_trend_is_cheap_and_plain(leaky_run):
    rows = reports.load_run(leaky_run).rows
    live = reports.live_trend(rows)
    json.dumps(live)
    assert live["samples"] == 720 and live["rss_slope_mb_per_hour"] > 10
    assert reports.live_trend([])["rss_mb"] is None
