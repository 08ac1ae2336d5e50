"""The plugin in real Locust processes against the real demo engine under the real memsoak-run.

Fail fast on a missing hook, the RSS limit (headless and web UI), the engine killed mid-run, and
Ctrl-C / SIGTERM still writing the report.

The six runs share nothing (each has its own engine, Locust and folder) and are mostly waiting, so
each is a background fixture (started with the other runs of tests/memsoak, conftest.py); the test
below it waits for it and holds the assertions.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import requests

from memsoak.engine import free_port
from memsoak_procs import Background, Procs, background_run, locust_cmd, output, read_jsonl, wait, wait_for

RSS_LIMIT_CODE, ENGINE_LOST_CODE, BAD_CONFIG_CODE = 11, 12, 13


@background_run("plugin")
def unreachable_hook(run: Background, procs: Procs, folder: Path) -> tuple[int, str, int]:
    """Locust pointed at a port nothing listens on: exit code, output, the engine's completions."""
    demo = run.engine(folder)
    cmd = locust_cmd(demo, folder / "results") + ["--hook-url", "http://127.0.0.1:9"]
    proc = procs.start(cmd, "locust")
    code = wait(proc, 60)
    return code, output(proc), requests.get(f"{demo.url}/api/health", timeout=5).json()["completions"]


@pytest.mark.slow
def test_unreachable_hook_fails_fast_with_one_line(unreachable_hook: Background) -> None:
    code, text, completions = unreachable_hook.result()
    assert code == BAD_CONFIG_CODE, text[-3000:]
    assert "hook at http://127.0.0.1:9 unreachable" in text and "memsoak-run" in text
    assert "Traceback" not in text
    assert not (unreachable_hook.folder / "results").exists()  # no load was sent, no run directory made
    assert completions == 0


@background_run("plugin")
def rss_limit_headless(run: Background, procs: Procs, folder: Path) -> tuple[int, str]:
    """A 300 s run under a 1 MB RSS limit set in a locust.conf, as Locust users set it."""
    demo = run.engine(folder)
    conf = folder / "locust.conf"
    conf.write_text("rss-limit-mb = 1\nend-ratio = 0.5\n")
    proc = procs.start(locust_cmd(demo, folder, "--config", str(conf), run_time=300), "locust")
    return wait(proc, 120), output(proc)


@pytest.mark.slow
def test_rss_limit_stops_a_headless_run(rss_limit_headless: Background) -> None:
    code, text = rss_limit_headless.result()
    run = rss_limit_headless.folder / "run"
    assert code == RSS_LIMIT_CODE, text[-3000:]  # long before the 300 s run time
    events = read_jsonl(run / "events.jsonl")
    limit = next(e for e in events if e["type"] == "rss_limit")
    assert limit["rss_bytes"] > limit["limit_bytes"] == 1024 * 1024
    assert events[-1] == {**events[-1], "type": "stop", "reason": "rss_limit"}
    report = json.loads((run / "report.json").read_text())
    assert report["exit_code"] == RSS_LIMIT_CODE
    settings = json.loads((run / "run.json").read_text())["settings"]
    assert settings["rss_limit_mb"] == 1.0


@background_run("plugin")
def rss_limit_web_ui(run: Background, procs: Procs, folder: Path) -> tuple[dict, int, str]:
    """A web UI run under a 1 MB RSS limit from the environment, started from the UI: the UI's
    answer to the start, the exit code, the output."""
    demo, port = run.engine(folder), free_port()
    cmd = locust_cmd(demo, folder, "--web-port", str(port), "--web-host", "127.0.0.1",
                     headless=False, run_time=None)
    proc = procs.start(cmd, "locust", env={**os.environ, "MEMSOAK_RSS_LIMIT_MB": "1"})
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), 60, "the Locust web UI")
    started = requests.post(f"http://127.0.0.1:{port}/swarm", timeout=10,
                            data={"user_count": 2, "spawn_rate": 2, "host": demo.url})
    return started.json(), wait(proc, 120), output(proc)


@pytest.mark.slow
def test_rss_limit_stops_a_web_ui_run(rss_limit_web_ui: Background) -> None:
    started, code, text = rss_limit_web_ui.result()
    assert started["success"] is True
    assert code == RSS_LIMIT_CODE, text[-3000:]  # the UI process itself ends, with the limit's code
    assert (rss_limit_web_ui.folder / "run" / "report.html").exists()


@background_run("plugin")
def engine_killed(run: Background, procs: Procs, folder: Path) -> tuple[int, str, list[dict]]:
    """A 300 s run whose engine is SIGKILLed once the harness has pulled every sample the hook
    held: the exit code, the output and the samples the hook held before the kill."""
    demo = run.engine(folder)
    proc = procs.start(locust_cmd(demo, folder, "--engine-lost-polls", "3", run_time=300), "locust")
    series = folder / "run" / "series.jsonl"
    wait_for(lambda: series.exists() and len(read_jsonl(series)) >= 8, 90, "8 rows in series.jsonl")
    held = requests.get(f"{demo.hook_url}/samples", params={"since": 0}, timeout=5).json()["samples"]
    # A pulled sample can only be kept once pulled: wait until the harness has polled past what the
    # hook holds now, then kill at once (samples taken after its last poll die with the engine).
    newest = held[-1]["seq"]
    wait_for(lambda: read_jsonl(series)[-1]["seq"] >= newest, 30, "the harness to poll the held samples")
    demo.kill_engine()  # SIGKILL: the engine and its hook die together, no goodbye
    return wait(proc, 120), output(proc), held


@pytest.mark.slow
def test_engine_killed_mid_run_keeps_every_sample(engine_killed: Background) -> None:
    code, text, held = engine_killed.result()
    run = engine_killed.folder / "run"
    assert code == ENGINE_LOST_CODE, text[-3000:]
    rows = read_jsonl(run / "series.jsonl")
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(set(seqs))
    taken_during_run = [s["seq"] for s in held if s["seq"] >= seqs[0]]
    assert set(taken_during_run) <= set(seqs)  # every sample the hook held before the kill
    events = read_jsonl(run / "events.jsonl")
    lost = next(e for e in events if e["type"] == "engine_lost")
    assert lost["last_seq"] == seqs[-1]
    report = json.loads((run / "report.json").read_text())
    assert report["exit_code"] == ENGINE_LOST_CODE
    assert report["samples"] == len(rows) and report["last_seq"] == seqs[-1]


def _interrupted(run: Background, procs: Procs, folder: Path, sig: int) -> tuple[int, str]:
    """A 300 s run sent `sig` once 6 rows are on disk: the exit code and the output."""
    demo = run.engine(folder)
    proc = procs.start(locust_cmd(demo, folder, run_time=300), "locust")
    series = folder / "run" / "series.jsonl"
    wait_for(lambda: series.exists() and len(read_jsonl(series)) >= 6, 90, "6 rows in series.jsonl")
    proc.send_signal(sig)
    return wait(proc, 90), output(proc)


@background_run("plugin")
def ctrl_c(run: Background, procs: Procs, folder: Path) -> tuple[int, str]:
    return _interrupted(run, procs, folder, signal.SIGINT)


@background_run("plugin")
def sigterm(run: Background, procs: Procs, folder: Path) -> tuple[int, str]:
    return _interrupted(run, procs, folder, signal.SIGTERM)


def _report_written_after(interrupted: Background) -> None:
    code, text = interrupted.result()
    run = interrupted.folder / "run"
    report = json.loads((run / "report.json").read_text())
    assert code == report["exit_code"], text[-3000:]
    assert report["samples"] >= 6
    events = read_jsonl(run / "events.jsonl")
    assert events[-1]["type"] == "stop" and events[-1]["reason"] == "signal"
    assert (run / "requests.json").exists()


@pytest.mark.slow
def test_ctrl_c_still_writes_the_report(ctrl_c: Background) -> None:
    _report_written_after(ctrl_c)


@pytest.mark.slow
def test_sigterm_still_writes_the_report(sigterm: Background) -> None:
    _report_written_after(sigterm)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
