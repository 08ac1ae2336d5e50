"""`memsoak demo` end to end: the real engine under the real memsoak-run, a headless Locust soak.

The clean acceptance run lasts MEMSOAK_TEST_CLEAN_S seconds (120 by default, as issue 3 asks).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from memsoak_procs import CLEAN_S, Background, Procs, background_run, output, read_jsonl, wait

MEMORY_COLUMNS = ("rss_bytes", "tree_rss_bytes", "vms_bytes", "allocated_blocks", "open_fds", "threads")
LOAD_COLUMNS = ("users", "rps", "requests_total", "failures_total", "requests_by_name", "ops")


def engine_processes(port: str) -> list[int]:
    """Processes of the demo engine that serves `port` (other tests' engines use other ports)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "memsoak.demo_engine" in cmdline and "--port" in cmdline and port in cmdline:
            found.append(proc.pid)
    return found


@background_run("clean_demo")
def clean_demo(run: Background, procs: Procs, folder: Path) -> tuple[int, str]:
    """`memsoak demo --duration CLEAN_S`: its exit code and output. Stopped with SIGTERM (which it
    passes on to its engine) if the session ends first."""
    proc = procs.start([sys.executable, "-m", "memsoak.cli", "demo", "--duration", str(CLEAN_S),
                        "--results", str(folder / "results")], "demo", term_grace_s=120)
    return wait(proc, CLEAN_S + 300), output(proc)


@pytest.mark.slow
def test_clean_run_passes_and_fills_the_run_directory(clean_demo: Background) -> None:
    # started with the first test of tests/memsoak (conftest.py), beside that directory's other
    # background runs (listeners, distributed, planted leak), which overlap its two minutes
    code, stdout = clean_demo.result(timeout_s=CLEAN_S + 400)
    assert code == 0, stdout[-4000:]
    (run,) = [p for p in (clean_demo.folder / "results").iterdir() if p.is_dir()]
    assert f"memsoak demo: report {run / 'report.html'} (exit code 0)" in stdout
    for name in ("run.json", "series.jsonl", "report.json", "report.html", "summary.md", "requests.json"):
        assert (run / name).is_file(), name

    rows = read_jsonl(run / "series.jsonl")
    seqs = [row["seq"] for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one row per sample
    assert len(rows) >= 0.8 * CLEAN_S  # the hook samples every second
    assert all(row[c] is not None for row in rows for c in MEMORY_COLUMNS + LOAD_COLUMNS)
    assert rows[len(rows) // 2]["users"] == 10 and rows[-1]["requests_total"] > 0

    run_json = json.loads((run / "run.json").read_text())
    assert run_json["settings"]["rss_limit_mb"] == 512.0 and run_json["health"]["pid"] > 0
    report = json.loads((run / "report.json").read_text())
    assert report["outcome"] == "pass" and report["samples"] == len(rows)
    # the sampled tracker by default (issue 11), and the report says so with the tracker's figures
    assert run_json["health"]["alloc_mode"] == "sampled" and run_json["health"]["tracing"] is False
    (tracking,) = [e for e in read_jsonl(run / "events.jsonl") if e["type"] == "alloc_tracking"]
    assert tracking["mode"] == "sampled" and tracking["sampler"]["samples"] > 0
    assert any(n.startswith("allocation tracking: sampled") for n in report["notes"])
    port = re.search(r"engine http://127.0.0.1:(\d+)", stdout).group(1)
    assert engine_processes(port) == []  # the demo stopped its engine


@pytest.mark.slow
def test_engine_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "memsoak.cli", "demo", "--duration", "5",
                           "--engine-arg=--llm-latency-ms=-5"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 13
    assert "Traceback" not in done.stderr and "memsoak demo:" in done.stderr


def test_quick_demo_load_comes_first_so_arguments_after_dashes_win() -> None:
    import argparse

    from memsoak.commands import demo
    from memsoak.engine import DemoEngine

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    engine = DemoEngine(port=1, hook_port=2)
    default = demo.locust_command(parser.parse_args([]), engine, "run")
    load = default.index("--think-min-s")
    assert default[load:load + 4] == demo.DEMO_LOAD
    override = demo.locust_command(parser.parse_args(["--", "--think-min-s", "0.5"]), engine, "run")
    # argparse keeps the last value of a repeated flag: the user's
    assert override[-2:] == ["--think-min-s", "0.5"] and override.index("--think-min-s") < len(override) - 2
    args = parser.parse_args(["--leak", "score_history:64", "--engine-arg=--cache-entries=8"])
    engine_args = demo.demo_engine(args, None).engine_args
    assert engine_args[:len(demo.ENGINE_BOUNDS)] == demo.ENGINE_BOUNDS and engine_args[-1] == "--cache-entries=8"
