"""The plugin as an object on its Locust environment (no process-global state, no patched Locust
method), and every import at start: a broken install fails before any load, not at the end of a
24-hour soak."""
from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memsoak import contract
from memsoak.engine import free_port
from memsoak_procs import LOCUSTFILES, locust_cmd, output, read_jsonl, wait

ROOT = Path(__file__).resolve().parents[3]


def _python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter (Locust monkey-patches ssl on import: never in pytest's own)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


PLUGIN = ROOT / "memsoak" / "plugin"


def test_the_plugin_imports_everything_at_module_top() -> None:
    late = []
    for path in sorted(PLUGIN.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = set(map(id, tree.body))
        late += [_where(path, node) for node in ast.walk(tree)
                 if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]
    assert not late, "imports inside functions (a broken install would show only when they run): " + ", ".join(late)


def test_importing_the_plugin_imports_the_analysis_that_writes_the_report() -> None:
    code = "import sys, memsoak.plugin; print('memsoak.reports.verdict.analysis' in sys.modules, 'memsoak.reports.render.writer' in sys.modules)"
    out = _python(code)
    assert out.returncode == 0 and out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_a_broken_analysis_fails_at_start_not_at_the_end_of_the_soak(tmp_path: Path) -> None:
    """A `reports` whose analysis cannot import (a broken install) stops Locust before any load."""
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "memsoak", broken / "memsoak", ignore=shutil.ignore_patterns("__pycache__"))
    writer = next((broken / "memsoak" / "reports").rglob("writer.py"))   # wherever the layout keeps the report writer
    writer.write_text("raise ImportError('jinja2 is broken in this install')\n")
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "locust", "-f", str(broken / "memsoak" / "locustfiles"), "--headless", "-u", "1", "-r", "1",
           "-t", "60s", "--host", "http://127.0.0.1:9", "--hook-url", "http://127.0.0.1:9",
           "--results-dir", str(results)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(broken)})
    assert out.returncode != 0
    assert "jinja2 is broken in this install" in out.stderr
    assert not results.exists()   # no run directory: it failed before the test started


def test_the_plugin_lives_on_its_environment_not_in_the_process() -> None:
    source = (PLUGIN / "listeners.py").read_text(encoding="utf-8")
    assert "class State" not in source and ".quit = " not in source   # no process-global state, no patched quit
    out = _python("""
        from types import SimpleNamespace
        from memsoak.plugin import listeners
        env_a, env_b = SimpleNamespace(), SimpleNamespace()
        plugin_a, plugin_b = listeners.MemsoakPlugin(), listeners.MemsoakPlugin()
        plugin_a.environment, plugin_b.environment = env_a, env_b
        plugin_a._count_worker_report(client_id="w1")
        assert plugin_a.worker_reports == {"w1": 1} and plugin_b.worker_reports == {}
        # a listener called for another environment (one events object shared by two) leaves it alone
        plugin_b._on_test_start(environment=env_a)
        assert plugin_b.current is None
        print("ok")
    """)
    assert out.returncode == 0 and out.stdout.split() == ["ok"], out.stderr[-2000:]


@pytest.mark.slow
def test_a_master_stopped_by_sigterm_is_interrupted_and_counts_its_workers_last_stats(engine, procs,
                                                                                      tmp_path: Path) -> None:
    """SIGTERM to a master mid-run: the plugin stops the workers, takes their last stats, and the run
    is what it is, interrupted (exit 17). (With Locust's own quitting listener first, the plugin used to
    find the runner stopped and call it the planned end: exit 0 for 12 s of a 300 s run.)"""
    demo = engine()
    counts = tmp_path / "counts"
    counts.mkdir()
    files = f"{LOCUSTFILES},{Path(__file__).with_name('worker_counter.py')}"
    env = {**os.environ, "MEMSOAK_TEST_COUNT_DIR": str(counts)}
    port = free_port()
    master = procs.start(locust_cmd(demo, tmp_path, "--master", "--expect-workers", "1", "--master-bind-host",
                                    "127.0.0.1", "--master-bind-port", str(port), "--checkpoint-interval-s", "0",
                                    run_time=300, files=files), "master", env=env)
    worker = procs.start([sys.executable, "-m", "locust", "-f", files, "--worker", "--master-host", "127.0.0.1",
                          "--master-port", str(port), "-H", demo.url], "worker", env=env)
    series = tmp_path / "run" / "series.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (series.exists() and len(read_jsonl(series)) >= 8):
        assert master.poll() is None, output(master)[-3000:]
        time.sleep(0.5)
    master.send_signal(signal.SIGTERM)
    assert wait(master, 180) == contract.EXIT_INTERRUPTED, output(master)[-3000:]
    assert wait(worker, 60) == 0, output(worker)[-2000:]
    stop = [e for e in read_jsonl(tmp_path / "run" / "events.jsonl") if e["type"] == contract.EVENT_STOP]
    assert [e["reason"] for e in stop] == [contract.STOP_SIGNAL]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    (account,) = [json.loads(p.read_text()) for p in counts.glob("worker-*.json")]
    reported = {f"{r['method']} {r['name']}": r["num_requests"] for r in report["requests"]}
    assert reported == account["requests"] and sum(reported.values()) > 0
