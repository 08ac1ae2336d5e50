"""The chat users against the real demo engine: lifecycle, templated names, failures by status,
the streaming user, and the mix-sweep shape.

The Locust runs are independent, so one module fixture starts them all at once (two engines: one
plain, one rate-limited, since the rate limit is per client address) and each test reads its run.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from memsoak.engine import DemoEngine
from memsoak_procs import LOCUSTFILES, Procs, locust_cmd, output, wait

# These runs check the load, and last 8-16 s: memsoak may call them pass, leak, inconclusive or too
# short to judge (18), never a failed load, a lost engine or a failed measurement.
SHORT_RUN_CODES = (0, 10, 15, 18)
RUNS: dict[str, dict[str, Any]] = {
    "lifecycle": {"engine": "plain", "run_time": 12, "users": ["ChatUser"],
                  "args": ["--end-ratio", "1", "--read-back-ratio", "1", "--messages-min", "2",
                           "--messages-max", "3", "--extra-headers",
                           "X-Tenant: t-{worker_index}; X-User: u-{user_index}"]},
    "stream": {"engine": "plain", "run_time": 10, "users": ["StreamUser"], "args": []},
    "wrong_key": {"engine": "plain", "run_time": 8, "users": [], "args": ["--api-key", "wrong"]},
    "limited": {"engine": "limited", "run_time": 10, "users": ["ChatUser"], "args": []},
    "sweep": {"engine": "plain", "run_time": 16, "users": [], "args": ["--sweep-phase-s", "3"],
              "files": f"{LOCUSTFILES},{LOCUSTFILES / '_mix_sweep.py'}"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, Path, str]]]:
    folder = tmp_path_factory.mktemp("chat")
    procs = Procs(folder)
    logs = [(folder / f"engine-{n}.log").open("w") for n in ("plain", "limited")]
    engines = {"plain": DemoEngine(log=logs[0]),
               "limited": DemoEngine(log=logs[1], engine_args=["--rate-limit-rps", "2", "--rate-limit-burst", "2"])}
    try:
        for demo in engines.values():
            demo.start()
        started = {}
        for name, spec in RUNS.items():
            cmd = locust_cmd(engines[spec["engine"]], folder / name, *spec["args"], run_time=spec["run_time"],
                             files=spec.get("files")) + spec["users"]
            started[name] = procs.start(cmd, name)
        results = {name: (wait(proc, 240), folder / name / "run", output(proc)) for name, proc in started.items()}
        yield results
    finally:
        procs.kill_all()
        for demo in engines.values():
            demo.stop(grace_s=10)
        for log in logs:
            log.close()


def requests_of(run_dir: Path) -> dict[str, dict]:
    rows = json.loads((run_dir / "requests.json").read_text())
    return {f"{r['method']} {r['name']}": r for r in rows}


@pytest.mark.slow
def test_session_lifecycle_and_templated_names(runs) -> None:
    code, run_dir, text = runs["lifecycle"]
    assert code in SHORT_RUN_CODES, text[-3000:]
    table = requests_of(run_dir)
    assert set(table) == {"POST /api/engine/chat/sessions", "POST /api/engine/chat/sessions/{id}/messages",
                          "GET /api/engine/chat/sessions/{id}", "DELETE /api/engine/chat/sessions/{id}"}
    created = table["POST /api/engine/chat/sessions"]["num_requests"]
    messages = table["POST /api/engine/chat/sessions/{id}/messages"]["num_requests"]
    ended = table["DELETE /api/engine/chat/sessions/{id}"]["num_requests"]
    assert all(r["num_failures"] == 0 for r in table.values())  # varied content: no 409 duplicates
    # every finished session was read back and ended; at most one per user (4) is still in flight
    assert created - 4 <= ended <= created
    assert table["GET /api/engine/chat/sessions/{id}"]["num_requests"] >= created - 4
    assert 2 * (created - 4) <= messages <= 3 * created


@pytest.mark.slow
def test_failures_carry_their_status(runs) -> None:
    errors_limited = {e for r in requests_of(runs["limited"][1]).values() for e in r["failures"]}
    errors_wrong_key = {e for r in requests_of(runs["wrong_key"][1]).values() for e in r["failures"]}
    assert "HTTP 429 Too Many Requests" in errors_limited
    assert errors_wrong_key == {"HTTP 401 Unauthorized"}
    assert runs["wrong_key"][0] == 13  # every first request refused 401: the run ends early, bad configuration


@pytest.mark.slow
def test_stream_user_records_first_token_and_total(runs) -> None:
    code, run_dir, text = runs["stream"]
    assert code in SHORT_RUN_CODES, text[-3000:]
    table = requests_of(run_dir)
    total, first = table["WS /ws/chat/{id}"], table["WS /ws/chat/{id} [first token]"]
    assert total["num_requests"] == first["num_requests"] > 0
    assert total["num_failures"] == 0
    assert total["avg_ms"] >= first["avg_ms"]  # the whole answer cannot come before its first token


@pytest.mark.slow
def test_mix_sweep_shape_changes_the_user_classes(runs) -> None:
    code, run_dir, text = runs["sweep"]
    assert code in SHORT_RUN_CODES, text[-3000:]
    for phase_class in ("ChurnUser", "TalkUser", "ReadBackUser"):
        assert f'"{phase_class}": 4' in text  # every phase ran with its own user class
    assert (run_dir / "report.json").exists()


@pytest.mark.slow
def test_locust_loads_the_directory_without_a_shape(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--list"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0
    assert sorted(done.stdout.split()[2:]) == ["ChatUser", "StreamUser"]
