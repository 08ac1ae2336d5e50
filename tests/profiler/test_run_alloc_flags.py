"""memsoak-run's allocation-tracking flags (--alloc-mode, --sample-bytes, --sample-frames) reach the
hook inside a real engine, override the environment, and bad values are one-line usage errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hookhelp import ALLOC_ENGINE, MEMSOAK_RUN, free_port, http, start

try:
    from memsoak.profiler import _memsoak_sampler  # noqa: F401
    BUILT = True
except ImportError:
    BUILT = False


def _health(options: list[str], port: int, env: dict[str, str] | None = None) -> dict:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, options=options,
                    env=env, engine_port=engine_port)
    status, health = http(started.hook + "/health")
    assert status == 200
    return health


@pytest.mark.skipif(not BUILT, reason="memsoak.profiler._memsoak_sampler is not built here "
                                      "(python setup.py build_ext --inplace)")
def test_sampled_mode_with_its_rate_and_depth(port: int) -> None:
    health = _health(["--alloc-mode", "sampled", "--sample-bytes", "65536", "--sample-frames", "8"], port,
                     env={"MEMSOAK_ALLOC_MODE": "tracemalloc", "MEMSOAK_SAMPLE_BYTES": "2048"})
    assert health["alloc_mode"] == "sampled"
    assert health["config"]["alloc_mode"] == "sampled"
    assert health["config"]["sample_bytes"] == 65536 and health["config"]["sample_frames"] == 8
    stats = health["alloc_sampler"]  # what the tracker itself runs with
    assert stats["running"] is True and stats["sample_bytes"] == 65536 and stats["max_frames"] == 8
    assert health["tracing"] is False


@pytest.mark.parametrize("mode", ["tracemalloc", "off"])
def test_tracemalloc_and_off_modes_override_the_environment(port: int, mode: str) -> None:
    health = _health(["--alloc-mode", mode], port, env={"MEMSOAK_ALLOC_MODE": "sampled"})
    assert health["alloc_mode"] == mode and health["config"]["alloc_mode"] == mode
    assert health["alloc_sampler"] is None
    # tracemalloc mode starts tracing at the first snapshot; off refuses snapshots
    status, _ = http(f"http://127.0.0.1:{port}/snapshots/flags", method="POST")
    assert status == (200 if mode == "tracemalloc" else 409)


@pytest.mark.parametrize("options, named", [
    (["--alloc-mode", "exact"], "--alloc-mode"),
    (["--sample-bytes", "100"], "--sample-bytes 100: must be within 1024..1073741824"),
    (["--sample-bytes", "2GiB"], "--sample-bytes"),
    (["--sample-frames", "0"], "--sample-frames 0: must be within 1..128"),
    (["--sample-frames", "129"], "--sample-frames 129"),
    (["--alloc-mode", "sampled", "--tracemalloc-frames", "1"], "--tracemalloc-frames 1 starts tracemalloc"),
])
def test_bad_values_are_one_line_usage_errors_and_start_nothing(options: list[str], named: str) -> None:
    done = subprocess.run([*MEMSOAK_RUN, *options, "--", sys.executable, "-c", "print('engine ran')"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr  # memsoak-run's usage-error status (argparse's)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert "engine ran" not in done.stdout
