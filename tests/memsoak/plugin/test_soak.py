"""A soak against the real engine with a planted leak: rows, snapshot diffs, verdict, attribution.

The run is a background fixture (started with the other runs of tests/memsoak, conftest.py); the
test waits for it and holds the assertions.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsoak_procs import Background, Procs, background_run, locust_cmd, output, read_jsonl, wait

LEAK_CODE = 10


@background_run("plugin")
def planted_leak(run: Background, procs: Procs, folder: Path) -> tuple[int, str, str]:
    """A 30 s soak of an engine with session_state planted: its exit code, output and planted line."""
    demo = run.engine(folder, leaks=["session_state:200000"])
    planted = demo.health()["leaks"]["session_state"]["site"]  # e.g. memsoak/demo_engine/leaks.py:46
    proc = procs.start(locust_cmd(demo, folder, "--checkpoint-interval-s", "8", run_time=30), "locust")
    return wait(proc, 240), output(proc), planted


@pytest.mark.slow
def test_planted_leak_exits_with_leak_code_and_names_its_line(planted_leak: Background) -> None:
    code, out, planted = planted_leak.result()
    assert code == LEAK_CODE, out[-3000:]
    run = planted_leak.folder / "run"

    rows = read_jsonl(run / "series.jsonl")
    seqs = [row["seq"] for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one row per sample, none lost
    assert all(row["rss_bytes"] and row["traced_current_bytes"] is not None for row in rows)
    assert rows[-1]["requests_total"] > 0 and rows[-1]["ops"]["sessions_created"] > 0
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)

    diffs = sorted(p.name for p in (run / "snapshots").glob("diff-*.json"))
    assert "diff-baseline--cp1.json" in diffs and any(d.endswith("--final.json") for d in diffs)

    report = json.loads((run / "report.json").read_text())
    assert report["outcome"] == "leak" and report["exit_code"] == LEAK_CODE
    assert report["sites"][0]["key"].endswith(planted)
    assert "Traceback" not in out
