"""`memsoak soak -- ENGINE COMMAND` end to end, with the engine in a virtualenv of its own.

The engine's venv is made from the shared interpreter with `python -m venv` (no system site
packages) and gets only what the demo engine needs (fastapi, uvicorn, psutil at the versions
installed here) from pip; the demo engine's code comes from this checkout. memsoak, Locust and the
analysis stay in memsoak's environment. A copy of that venv without psutil is an engine whose hook
cannot start: the harness must refuse it (exit 13, the reason) instead of soaking it unhooked.
The venv is built once per machine (about a minute) and reused, keyed by the versions it holds.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import psutil
import pytest

import memsoak
from memsoak.engine import free_port

REPO = Path(memsoak.__file__).resolve().parents[1]
# uvicorn[standard]: its WebSocket support (websockets), as any engine serving WS would have it. No
# psutil: on Linux the hook reads /proc itself and needs nothing in the engine's environment
PINS = [f"{name}=={version(name.split('[')[0])}" for name in ("fastapi", "uvicorn[standard]", "pydantic")]


def engine_venv() -> Path:
    """A venv with only the demo engine's dependencies, built once (no system site packages)."""
    tag = hashlib.sha1(" ".join([sys.version, *PINS]).encode()).hexdigest()[:10]
    venv = Path(tempfile.gettempdir()) / f"memsoak-test-engine-venv-{tag}"
    if (venv / "ready").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PINS],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.skip(f"cannot install the engine's venv with pip: {done.stderr.strip()[-300:]}")
    (venv / "ready").write_text(" ".join(PINS))
    return venv


def hook_unimportable(venv: Path, where: Path) -> Path:
    """A copy of VENV whose interpreter cannot import the hook (as one too old for it, or with a
    broken install): a .pth line, run at start-up before the sitecustomize, blocks the package."""
    copy = where / "venv-no-hook"
    shutil.copytree(venv, copy, symlinks=True)
    (site,) = (copy / "lib").glob("python3*/site-packages")
    (site / "zz_block_memsoak_hook.pth").write_text('import sys; sys.modules["memsoak.profiler"] = None\n')
    return copy


def soak(tmp_path: Path, python: Path, port: int, *extra: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the engine's code from this checkout, nothing else
    cmd = [sys.executable, "-m", "memsoak.cli", "soak", "--host", f"http://127.0.0.1:{port}",
           "--results", str(tmp_path / "results"), "--start-timeout-s", "60", "--stop-grace-s", "10",
           *extra, "--", str(python), "-m", "memsoak.demo_engine", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=tmp_path)


def serving(port: int) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if "memsoak.demo_engine" in (p.info["cmdline"] or []) and str(port) in (p.info["cmdline"] or [])]


@pytest.mark.slow
def test_soak_runs_an_engine_from_its_own_venv_and_exits_with_the_verdict(tmp_path: Path) -> None:
    venv = engine_venv()
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    port = free_port()
    done = soak(tmp_path, venv / "bin" / "python", port, "--duration", "25s", "--users", "3",
                "--spawn-rate", "3", "--status-interval-s", "5", "--think-min-s", "0.1", "--think-max-s", "0.5")
    text = done.stdout + done.stderr
    assert f"waiting up to 60 s for http://127.0.0.1:{port}/api/health and the hook at" in text
    runs = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(runs) == 1, text[-3000:]
    report = json.loads((runs[0] / "report.json").read_text())
    # 25 s is too short to be evidence of no leak: pass, leak, inconclusive or insufficient evidence
    assert done.returncode == report["exit_code"] and done.returncode in (0, 10, 15, 18), text[-3000:]
    health = json.loads((runs[0] / "run.json").read_text())["health"]
    assert health["cmdline"][0] == str(venv / "bin" / "python")  # hooked inside the engine's own venv
    # the sampled tracker by default; tracemalloc when the engine's venv could not build it
    assert health["alloc_mode"] in ("sampled", "tracemalloc") and health["tracing"] == (health["alloc_mode"] == "tracemalloc")
    table = {f"{r['method']} {r['name']}": r for r in json.loads((runs[0] / "requests.json").read_text())}
    messages = table["POST /api/engine/chat/sessions/{id}/messages"]
    assert messages["num_requests"] > 20 and messages["num_failures"] == 0
    assert len(re.findall(r"memsoak status: 0:00:\d\d elapsed", text)) >= 3
    assert "memsoak soak: engine stopped; report" in text
    assert serving(port) == []  # stopped: nothing of the engine left
    # no limit given: relative to the engine's starting RSS (a small engine keeps the 512 MB floor)
    start = re.search(r"the engine starts at (\d+) MB RSS: --rss-limit-mb (\d+) \(3x, at least 512", text)
    assert start and int(start.group(2)) == max(512, -(-3 * int(start.group(1)) // 100) * 100), text[-2000:]
    assert json.loads((runs[0] / "run.json").read_text())["settings"]["rss_limit_mb"] == int(start.group(2))


@pytest.mark.slow
def test_an_engine_whose_hook_cannot_start_is_refused_not_soaked_unhooked(tmp_path: Path) -> None:
    venv = hook_unimportable(engine_venv(), tmp_path)
    port = free_port()
    done = soak(tmp_path, venv / "bin" / "python", port, "--duration", "20s", timeout_s=120)
    assert done.returncode == 13, done.stdout + done.stderr
    assert "the hook could not start inside the engine, so it is not soaked unhooked" in done.stderr
    assert "ModuleNotFoundError: import of memsoak.profiler halted" in done.stderr
    assert "make the hook importable by the engine's own interpreter" in done.stderr
    assert not [p for p in (tmp_path / "results").iterdir() if p.is_dir()]  # no load, no run directory
    assert serving(port) == []


@pytest.mark.slow
def test_soak_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    for args, expected in ((["soak"], "nothing to start: give the engine's command after --"),
                           (["soak", "--host", "http://10.1.2.3:8000", "--", "x"], "load goes to loopback only")):
        done = subprocess.run([sys.executable, "-m", "memsoak.cli", *args], capture_output=True, text=True,
                              timeout=240, cwd=tmp_path)
        assert done.returncode == 13 and expected in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_options_lists_every_setting_with_flag_env_var_conf_key_and_default() -> None:
    done = subprocess.run([sys.executable, "-m", "memsoak.cli", "options"], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for flag, env, key, default in (("--rss-limit-mb", "MEMSOAK_RSS_LIMIT_MB", "rss-limit-mb", "512"),
                                    ("--status-interval-s", "MEMSOAK_STATUS_INTERVAL_S", "status-interval-s", "60"),
                                    ("--ws-reply-timeout-s", "MEMSOAK_WS_REPLY_TIMEOUT_S", "ws-reply-timeout-s", "120"),
                                    ("--api-key", "MEMSOAK_API_KEY", "api-key", "demo-key"),
                                    ("--sweep-phase-s", "MEMSOAK_SWEEP_PHASE_S", "sweep-phase-s", "60")):
        assert any(line.split()[1:5] == [flag, env, key, default] for line in lines if len(line.split()) > 4), flag
    from memsoak.reports.settings import SETTINGS
    assert all(any(f" {s.flag} " in line for line in lines) for s in SETTINGS)


def readme_example() -> list[str]:
    """The command after the README's <!-- soak-example --> marker, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- soak-example -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return shlex.split(block.replace("\\\n", " "))


@pytest.mark.slow
def test_the_readme_example_soaks_the_strict_engine_with_no_429(tmp_path: Path) -> None:
    """The README's command as written, shortened to 45 s and moved to a free port."""
    argv = readme_example()
    assert argv[:2] == ["memsoak", "soak"] and "memsoak-demo-engine" in argv and "--strict" in argv
    assert "X-Forwarded-For: 10.0.0.{user_index}" in argv
    port = free_port()
    argv[argv.index("--duration") + 1] = "45s"
    argv[len(argv) - 1 - argv[::-1].index("--port") + 1] = str(port)  # the engine's --port
    cut = argv.index("--")
    engine = argv[cut + 1:]
    if shutil.which(engine[0]) is None:  # not installed as a script: the same module
        engine = [sys.executable, "-m", "memsoak.demo_engine", *engine[1:]]
    cmd = [sys.executable, "-m", "memsoak.cli", *argv[1:cut], "--host", f"http://127.0.0.1:{port}",
           "--results", str(tmp_path / "results"), "--status-interval-s", "10", "--", *engine]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    text = done.stdout + done.stderr
    runs = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(runs) == 1, text[-3000:]
    report = json.loads((runs[0] / "report.json").read_text())
    # 25 s is too short to be evidence of no leak: pass, leak, inconclusive or insufficient evidence
    assert done.returncode == report["exit_code"] and done.returncode in (0, 10, 15, 18), text[-3000:]
    rows = json.loads((runs[0] / "requests.json").read_text())
    posts = sum(r["num_requests"] for r in rows if r["method"] == "POST")
    print(f"POSTs: {posts} in 45 s")
    # more than Aria's limiter lets one client send in a minute (300), in less than a minute: from one
    # shared address this load would have been refused
    assert posts > 300, text[-3000:]
    failures = {error: n for r in rows for error, n in r["failures"].items()}
    assert not any("429" in error for error in failures), failures
    assert "were rate-limited" not in text and "refused as unauthorized" not in text
    assert len(re.findall(r"memsoak status: ", text)) >= 3


@pytest.mark.slow
def test_an_option_locust_refuses_is_exit_13_and_the_engine_is_stopped(tmp_path: Path) -> None:
    port = free_port()
    done = soak(tmp_path, Path(sys.executable), port, "--duration", "20s", "--no-such-option", "1", timeout_s=180)
    assert done.returncode == 13, done.stdout + done.stderr
    assert "--no-such-option" in done.stderr and "the soak never started (Locust exit" in done.stderr
    assert serving(port) == []


def test_the_relative_rss_limit_is_three_times_the_start_and_never_below_512() -> None:
    from memsoak.commands.soak import relative_rss_limit
    assert relative_rss_limit(80 * 2**20) == 512
    assert relative_rss_limit(300 * 2**20) == 900
    assert relative_rss_limit(301 * 2**20) == 1000
