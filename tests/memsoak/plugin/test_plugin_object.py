"""The plugin as an object on its Locust environment (no process-global state, no patched Locust
method), and every import at start: a broken install fails before any load, not at the end of a
24-hour soak."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    code = "import sys, memsoak.plugin; print('reports.analysis' in sys.modules, 'reports.writer' in sys.modules)"
    out = _python(code)
    assert out.returncode == 0 and out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_a_broken_analysis_fails_at_start_not_at_the_end_of_the_soak(tmp_path: Path) -> None:
    """A `reports` whose analysis cannot import (a broken install) stops Locust before any load."""
    broken = tmp_path / "broken"
    (broken / "reports").mkdir(parents=True)
    for source in (ROOT / "reports").glob("*.py"):
        (broken / "reports" / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "reports" / "writer.py").write_text("raise ImportError('jinja2 is broken in this install')\n")
    (broken / "reports" / "templates").symlink_to(ROOT / "reports" / "templates")
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles"), "--headless", "-u", "1", "-r", "1",
           "-t", "60s", "--host", "http://127.0.0.1:9", "--hook-url", "http://127.0.0.1:9",
           "--results-dir", str(results)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": f"{broken}{os.pathsep}{ROOT}"})
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
