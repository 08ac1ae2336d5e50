"""The plugin in real Locust processes against the real demo engine under the real memsoak-run.

Fail fast on a missing hook, the RSS limit (headless and web UI), the engine killed mid-run, and
Ctrl-C / SIGTERM still writing the report.

The six runs share nothing (each has its own engine, Locust and folder) and are mostly waiting, so
they run in the background with the other SCENARIOS of tests/memsoak (conftest.py) and each test
reads its own.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import requests

from memsoak.engine import free_port
from memsoak_procs import Procs, Scenarios, locust_cmd, output, read_jsonl, wait, wait_for

RSS_LIMIT_CODE, ENGINE_LOST_CODE, BAD_CONFIG_CODE = 11, 12, 13


def unreachable_hook(runs: Scenarios, procs: Procs, tmp_path: Path) -> None:
    demo = runs.engine(tmp_path)
    cmd = locust_cmd(demo, tmp_path / "results") + ["--hook-url", "http://127.0.0.1:9"]
    proc = procs.start(cmd, "locust")
    assert wait(proc, 60) == BAD_CONFIG_CODE
    text = output(proc)
    assert "hook at http://127.0.0.1:9 unreachable" in text and "memsoak-run" in text
    assert "Traceback" not in text
    assert not (tmp_path / "results").exists()  # no load was sent, no run directory made
    assert requests.get(f"{demo.url}/api/health", timeout=5).json()["completions"] == 0


def rss_limit_headless(runs: Scenarios, procs: Procs, tmp_path: Path) -> None:
    demo = runs.engine(tmp_path)
    conf = tmp_path / "locust.conf"  # the limit comes from a config file, as Locust users set it
    conf.write_text("rss-limit-mb = 1\nend-ratio = 0.5\n")
    proc = procs.start(locust_cmd(demo, tmp_path, "--config", str(conf), run_time=300), "locust")
    assert wait(proc, 120) == RSS_LIMIT_CODE  # long before the 300 s run time
    events = read_jsonl(tmp_path / "run" / "events.jsonl")
    limit = next(e for e in events if e["type"] == "rss_limit")
    assert limit["rss_bytes"] > limit["limit_bytes"] == 1024 * 1024
    assert events[-1] == {**events[-1], "type": "stop", "reason": "rss_limit"}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["exit_code"] == RSS_LIMIT_CODE
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["rss_limit_mb"] == 1.0


def rss_limit_web_ui(runs: Scenarios, procs: Procs, tmp_path: Path) -> None:
    demo, port = runs.engine(tmp_path), free_port()
    cmd = locust_cmd(demo, tmp_path, "--web-port", str(port), "--web-host", "127.0.0.1",
                     headless=False, run_time=None)
    # the limit comes from the environment this time
    proc = procs.start(cmd, "locust", env={**os.environ, "MEMSOAK_RSS_LIMIT_MB": "1"})
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, "the Locust web UI")
    started = requests.post(f"http://127.0.0.1:{port}/swarm", timeout=10,
                            data={"user_count": 2, "spawn_rate": 2, "host": demo.url})
    assert started.json()["success"] is True
    assert wait(proc, 120) == RSS_LIMIT_CODE  # the UI process itself ends, with the limit's code
    assert (tmp_path / "run" / "report.html").exists()


def engine_killed(runs: Scenarios, procs: Procs, tmp_path: Path) -> None:
    demo = runs.engine(tmp_path)
    proc = procs.start(locust_cmd(demo, tmp_path, "--engine-lost-polls", "3", run_time=300), "locust")
    series = tmp_path / "run" / "series.jsonl"
    wait_for(lambda: series.exists() and len(read_jsonl(series)) >= 8, 90, "8 rows in series.jsonl")
    held = requests.get(f"{demo.hook_url}/samples", params={"since": 0}, timeout=5).json()["samples"]
    # A pulled sample can only be kept once pulled: wait until the harness has polled past what the
    # hook holds now, then kill at once (samples taken after its last poll die with the engine).
    newest = held[-1]["seq"]
    wait_for(lambda: read_jsonl(series)[-1]["seq"] >= newest, 30, "the harness to poll the held samples")
    demo.kill_engine()  # SIGKILL: the engine and its hook die together, no goodbye
    assert wait(proc, 120) == ENGINE_LOST_CODE
    rows = read_jsonl(series)
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(set(seqs))
    taken_during_run = [s["seq"] for s in held if s["seq"] >= seqs[0]]
    assert set(taken_during_run) <= set(seqs)  # every sample the hook held before the kill
    events = read_jsonl(tmp_path / "run" / "events.jsonl")
    lost = next(e for e in events if e["type"] == "engine_lost")
    assert lost["last_seq"] == seqs[-1]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["exit_code"] == ENGINE_LOST_CODE
    assert report["samples"] == len(rows) and report["last_seq"] == seqs[-1]


def interrupted(runs: Scenarios, procs: Procs, tmp_path: Path, sig: int) -> None:
    demo = runs.engine(tmp_path)
    proc = procs.start(locust_cmd(demo, tmp_path, run_time=300), "locust")
    series = tmp_path / "run" / "series.jsonl"
    wait_for(lambda: series.exists() and len(read_jsonl(series)) >= 6, 90, "6 rows in series.jsonl")
    proc.send_signal(sig)
    code = wait(proc, 90)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert code == report["exit_code"]
    assert report["samples"] >= 6
    events = read_jsonl(tmp_path / "run" / "events.jsonl")
    assert events[-1]["type"] == "stop" and events[-1]["reason"] == "signal"
    assert (tmp_path / "run" / "requests.json").exists()


# Run in the background (tests/memsoak/conftest.py: plugin_runs) for the tests marked with their name.
SCENARIOS = {"unreachable_hook": unreachable_hook, "rss_limit_headless": rss_limit_headless,
             "rss_limit_web_ui": rss_limit_web_ui, "engine_killed": engine_killed,
             "ctrl_c": lambda *a: interrupted(*a, sig=signal.SIGINT),
             "sigterm": lambda *a: interrupted(*a, sig=signal.SIGTERM)}


@pytest.mark.scenario("unreachable_hook")
def test_unreachable_hook_fails_fast_with_one_line(plugin_runs: Scenarios) -> None:
    plugin_runs.result("unreachable_hook")


@pytest.mark.scenario("rss_limit_headless")
def test_rss_limit_stops_a_headless_run(plugin_runs: Scenarios) -> None:
    plugin_runs.result("rss_limit_headless")


@pytest.mark.scenario("rss_limit_web_ui")
def test_rss_limit_stops_a_web_ui_run(plugin_runs: Scenarios) -> None:
    plugin_runs.result("rss_limit_web_ui")


@pytest.mark.scenario("engine_killed")
def test_engine_killed_mid_run_keeps_every_sample(plugin_runs: Scenarios) -> None:
    plugin_runs.result("engine_killed")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.scenario(name))
                                  for name in ("ctrl_c", "sigterm")])
def test_interrupt_still_writes_the_report(plugin_runs: Scenarios, name: str) -> None:
    plugin_runs.result(name)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
