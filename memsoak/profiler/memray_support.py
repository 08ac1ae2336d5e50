"""`memsoak-run --memray FILE`: a memray Tracker in every Python process, reports when the engine exits.

The Tracker starts from the sitecustomize (COMMAND may be `uvicorn ...`, not `python`), with native
traces and follow_fork. The process started directly by memsoak-run writes FILE; any other Python
process of the tree (spawned workers) writes FILE.<pid>, and forked children FILE[.<pid>].<childpid>
(memray's own naming). After the engine exits, memsoak-run renders for every capture C:
C.stats.txt, C.stats.json, C.flamegraph.html, C.flamegraph-leaks.html, C.table.html.

Leaks right by default: memray's leaks view blames pymalloc arenas unless Python allocators are
traced or pymalloc is off. Mode `malloc` (default) sets PYTHONMALLOC=malloc for the whole tree;
`trace` keeps pymalloc and passes trace_python_allocators=True; `pymalloc` does neither (cheapest,
leaks view unreliable). Costs measured in docs/hook.md. The full capture grows by megabytes per
second of load; `--memray-aggregate` writes memray's aggregated format instead (small, but unreadable
if the process is killed before the Tracker ends).
"""
from __future__ import annotations

import atexit
import glob
import os
import re
import subprocess
import sys
from typing import Any

MODES = ("malloc", "trace", "pymalloc")
OUTPUTS = {
    "stats": ".stats.txt",
    "stats_json": ".stats.json",
    "flamegraph": ".flamegraph.html",
    "flamegraph_leaks": ".flamegraph-leaks.html",
    "table": ".table.html",
}


def env_for(file: str, mode: str, run_pid: int, aggregate: bool = False) -> dict[str, str]:
    """Environment memsoak-run adds to COMMAND's for a memray run."""
    env = {"MEMSOAK_MEMRAY_FILE": os.path.abspath(file), "MEMSOAK_MEMRAY_MODE": mode,
           "MEMSOAK_RUN_PID": str(run_pid)}
    if aggregate:
        env["MEMSOAK_MEMRAY_AGGREGATE"] = "1"
    if mode == "malloc":
        env["PYTHONMALLOC"] = "malloc"
    return env


def start_tracker_from_env() -> Any:
    """Called by the sitecustomize: start a Tracker that lasts until interpreter exit."""
    import memray  # optional dependency: only imported in a --memray run

    base = os.environ["MEMSOAK_MEMRAY_FILE"]
    direct_child = str(os.getppid()) == os.environ.get("MEMSOAK_RUN_PID")
    path = base if direct_child else f"{base}.{os.getpid()}"
    options: dict[str, Any] = {}
    if os.environ.get("MEMSOAK_MEMRAY_AGGREGATE") == "1":  # small files for long soaks
        options["file_format"] = memray.FileFormat.AGGREGATED_ALLOCATIONS
    tracker = memray.Tracker(path, native_traces=True, follow_fork=True,
                             trace_python_allocators=os.environ.get("MEMSOAK_MEMRAY_MODE") == "trace",
                             **options)
    tracker.__enter__()
    atexit.register(tracker.__exit__, None, None, None)  # registered first, so it runs last
    return tracker


def captures(file: str) -> list[str]:
    """FILE and FILE.<pid>[.<pid>...] capture files, not the rendered outputs."""
    found = [file] if os.path.exists(file) else []
    pattern = re.compile(re.escape(os.path.basename(file)) + r"(\.\d+)+$")
    for path in sorted(glob.glob(glob.escape(file) + ".*")):
        if pattern.match(os.path.basename(path)):
            found.append(path)
    return found


def render(capture: str, python: str = sys.executable, timeout: float = 300.0) -> dict[str, str]:
    """Run memray's reporters on one capture; returns {output: path or 'failed: reason'}."""
    results: dict[str, str] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMSOAK_", "PYTHONMALLOC"))}
    env["NO_COLOR"] = "1"
    commands = {
        "stats_json": ["stats", "--json", "-f", "-o", capture + OUTPUTS["stats_json"], capture],
        "flamegraph": ["flamegraph", "-f", "-o", capture + OUTPUTS["flamegraph"], capture],
        "flamegraph_leaks": ["flamegraph", "--leaks", "-f", "-o",
                             capture + OUTPUTS["flamegraph_leaks"], capture],
        "table": ["table", "-f", "-o", capture + OUTPUTS["table"], capture],
    }
    try:
        done = subprocess.run([python, "-m", "memray", "stats", capture], capture_output=True,
                              text=True, env={**env, "COLUMNS": "120"}, timeout=timeout)
        if done.returncode == 0:
            with open(capture + OUTPUTS["stats"], "w") as handle:
                handle.write(done.stdout)
            results["stats"] = capture + OUTPUTS["stats"]
        else:
            results["stats"] = "failed: " + _last_line(done.stderr or done.stdout)
    except (OSError, subprocess.TimeoutExpired) as error:
        results["stats"] = f"failed: {error}"
    for name, args in commands.items():
        try:
            done = subprocess.run([python, "-m", "memray", *args], capture_output=True, text=True,
                                  env=env, timeout=timeout)
            ok = done.returncode == 0 and os.path.exists(capture + OUTPUTS[name])
            results[name] = capture + OUTPUTS[name] if ok else \
                "failed: " + _last_line(done.stderr or done.stdout)
        except (OSError, subprocess.TimeoutExpired) as error:
            results[name] = f"failed: {error}"
    return results


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
