"""Installed import names that cannot collide, and a hook install that carries psutil only.

Everything memsoak installs lives under the `memsoak` package (memsoak.profiler, memsoak.reports,
memsoak.locustfiles, memsoak.demo_engine), so an engine with its own `reports` or `profiler`
module keeps it, and the hook is still found under its own name. The base install
(`memsoak[hook]`) is the hook alone: psutil and nothing else.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BARE_PYTHON = os.environ.get("MEMSOAK_CI_PYTHON", "/usr/bin/python3")
TOP_LEVEL = {"memsoak"}
# what a hook install may bring besides memsoak itself (pip and setuptools come with every venv)
HOOK_ONLY = {"memsoak", "psutil", "pip", "setuptools", "wheel"}

ENGINE_OWN = {
    "reports.py": "WHO = 'the engine'\n",
    "profiler.py": "WHO = 'the engine'\n",
}
# An engine that has its own `reports` and `profiler` modules and imports the hook by its name.
ENGINE_CHECK = textwrap.dedent("""
    import json, sys
    import reports, profiler
    import memsoak.profiler
    from memsoak import reports as memsoak_reports_name  # noqa: F401  (only where installed)
    print(json.dumps({"reports": reports.WHO, "profiler": profiler.WHO,
                      "hook": memsoak.profiler.__file__, "install": callable(memsoak.profiler.install)}))
""")


def _engine_dir(tmp_path: Path) -> Path:
    engine = tmp_path / "engine"
    engine.mkdir()
    for name, body in ENGINE_OWN.items():
        (engine / name).write_text(body)
    return engine


def test_only_the_namespace_is_a_top_level_package() -> None:
    """The source tree the wheel is built from has one top-level package; the setuptools config
    names only it."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages == TOP_LEVEL, f"top-level packages {sorted(packages)}: move them under memsoak/"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'include = ["memsoak*"]' in pyproject
    for name in ("profiler", "reports", "locustfiles", "demo_engine"):
        assert (REPO / "memsoak" / name / "__init__.py").is_file()


def test_an_engines_own_reports_and_profiler_modules_neither_shadow_nor_are_shadowed(tmp_path: Path) -> None:
    """The engine's directory first on sys.path (as `python app.py` puts it) and memsoak importable:
    `import reports` is the engine's, memsoak's reports and hook are memsoak's."""
    engine = _engine_dir(tmp_path)
    (engine / "check.py").write_text(ENGINE_CHECK + textwrap.dedent("""
        print(json.dumps({"memsoak_reports": memsoak_reports_name.__file__}))
    """))
    done = subprocess.run([sys.executable, "check.py"], cwd=engine, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert first["reports"] == first["profiler"] == "the engine"
    assert Path(first["hook"]).parent == REPO / "memsoak" / "profiler" and first["install"]
    assert Path(second["memsoak_reports"]).parent == REPO / "memsoak" / "reports"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_hook_extra_installs_psutil_only_and_the_hook_runs_an_engine_with_its_own_reports(tmp_path: Path) -> None:
    """`pip install '.[hook]'` into a fresh venv of a bare interpreter: psutil and nothing heavy;
    `memsoak-run` starts the hook in an engine whose own `reports`/`profiler` stay its own; the
    `memsoak` command, whose extras are missing, says which install fixes it in one line."""
    if not Path(BARE_PYTHON).exists():
        pytest.skip(f"{BARE_PYTHON} not found (set MEMSOAK_CI_PYTHON to a bare interpreter)")
    # nothing of this checkout or of the calling environment may leak into the fresh venv
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv = tmp_path / "venv"
    subprocess.run([BARE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300, env=clean)
    python, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip"]
    source = tmp_path / "src"   # a copy: the build must not write into the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "tests", "bench", "docs", "results", "build", "*.egg-info", "__pycache__", "*.so", ".venv"))
    done = subprocess.run([*pip, "install", "-q", "--disable-pip-version-check", f"{source}[hook]"],
                          capture_output=True, text=True, timeout=900, env=clean)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([*pip, "list", "--format=json", "--disable-pip-version-check"],
                            capture_output=True, text=True, check=True, timeout=120, env=clean)
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(listed.stdout)}
    assert "psutil" in installed and "memsoak" in installed
    assert installed <= HOOK_ONLY, f"the hook install brought {sorted(installed - HOOK_ONLY)}"

    engine = _engine_dir(tmp_path)
    (engine / "app.py").write_text(ENGINE_CHECK.replace(
        "from memsoak import reports as memsoak_reports_name  # noqa: F401  (only where installed)\n", "")
        + "import time\nsys.stdout.flush()\ntime.sleep(60)\n")
    hook_port = _free_port()
    log = tmp_path / "engine.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(venv / "bin" / "memsoak-run"), "--host", "127.0.0.1", "--port",
                                 str(hook_port), "--", str(python), "app.py"], cwd=engine, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, env=clean)
    try:
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{hook_port}/health", timeout=2) as resp:
                    health = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.3)
        assert health is not None, f"the hook did not answer: {log.read_text()[-2000:]}"
        assert "app.py" in " ".join(health["cmdline"]), health
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and '"reports"' not in log.read_text():
            time.sleep(0.2)
        seen = json.loads(next(l for l in log.read_text().splitlines() if l.startswith("{")))
        assert seen["reports"] == seen["profiler"] == "the engine"
        assert "site-packages" in seen["hook"] and seen["hook"].endswith("memsoak/profiler/__init__.py")
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)

    for args in (["report", str(tmp_path)], ["demo"]):
        cli = subprocess.run([str(venv / "bin" / "memsoak"), *args], capture_output=True, text=True, timeout=120,
                             env=clean)
        assert cli.returncode == 13, cli.stderr
        lines = [l for l in cli.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "Traceback" not in cli.stderr, cli.stderr
        extra = "all" if args[0] == "demo" else "locust"
        assert f"pip install 'memsoak[{extra}]'" in lines[0], lines[0]
