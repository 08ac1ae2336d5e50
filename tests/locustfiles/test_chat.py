"""The chat users against the real demo engine: lifecycle, templated names, failures by status."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memsoak_procs import LOCUSTFILES, locust_cmd, output, wait


def requests_of(run_dir: Path) -> dict[str, dict]:
    rows = json.loads((run_dir / "requests.json").read_text())
    return {f"{r['method']} {r['name']}": r for r in rows}


@pytest.mark.slow
def test_session_lifecycle_and_templated_names(engine, procs, tmp_path: Path) -> None:
    demo = engine()
    cmd = locust_cmd(demo, tmp_path, "--end-ratio", "1", "--read-back-ratio", "1", "--messages-min", "2",
                     "--messages-max", "3", "--extra-headers", "X-Tenant: t-{worker_index}; X-User: u-{user_index}",
                     run_time=15) + ["ChatUser"]
    proc = procs.start(cmd, "locust")
    assert wait(proc, 180) in (0, 10), output(proc)[-3000:]
    table = requests_of(tmp_path / "run")
    assert set(table) == {"POST /api/engine/chat/sessions", "POST /api/engine/chat/sessions/{id}/messages",
                          "GET /api/engine/chat/sessions/{id}", "DELETE /api/engine/chat/sessions/{id}"}
    created = table["POST /api/engine/chat/sessions"]["num_requests"]
    messages = table["POST /api/engine/chat/sessions/{id}/messages"]["num_requests"]
    ended = table["DELETE /api/engine/chat/sessions/{id}"]["num_requests"]
    assert all(r["num_failures"] == 0 for r in table.values())  # varied content: no 409 duplicates
    # every finished session was read back and ended; at most one per user is still in flight
    assert created - 4 <= ended <= created
    assert 2 * (created - 4) <= messages <= 3 * created


@pytest.mark.slow
def test_failures_carry_their_status(engine, procs, tmp_path: Path) -> None:
    demo = engine(engine_args=["--rate-limit-rps", "2", "--rate-limit-burst", "2"])
    limited = procs.start(locust_cmd(demo, tmp_path / "a", run_time=10) + ["ChatUser"], "limited")
    wrong_key = procs.start(locust_cmd(demo, tmp_path / "b", "--api-key", "wrong", run_time=8), "wrong")
    wait(limited, 180), wait(wrong_key, 180)
    errors_a = {e for r in requests_of(tmp_path / "a" / "run").values() for e in r["failures"]}
    errors_b = {e for r in requests_of(tmp_path / "b" / "run").values() for e in r["failures"]}
    assert "HTTP 429 Too Many Requests" in errors_a
    assert errors_b == {"HTTP 401 Unauthorized"}


@pytest.mark.slow
def test_stream_user_records_first_token_and_total(engine, procs, tmp_path: Path) -> None:
    demo = engine()
    proc = procs.start(locust_cmd(demo, tmp_path, run_time=12) + ["StreamUser"], "locust")
    assert wait(proc, 180) in (0, 10), output(proc)[-3000:]
    table = requests_of(tmp_path / "run")
    total, first = table["WS /ws/chat/{id}"], table["WS /ws/chat/{id} [first token]"]
    assert total["num_requests"] == first["num_requests"] > 0
    assert total["num_failures"] == 0
    assert total["avg_ms"] >= first["avg_ms"]  # the whole answer cannot come before its first token


@pytest.mark.slow
def test_mix_sweep_shape_changes_the_user_classes(engine, procs, tmp_path: Path) -> None:
    demo = engine()
    files = f"{LOCUSTFILES},{LOCUSTFILES / '_mix_sweep.py'}"
    proc = procs.start(locust_cmd(demo, tmp_path, "--sweep-phase-s", "3", run_time=16, files=files), "locust")
    assert wait(proc, 180) in (0, 10), output(proc)[-3000:]
    text = output(proc)
    for phase_class in ("ChurnUser", "TalkUser", "ReadBackUser"):
        assert f'"{phase_class}": 4' in text  # every phase ran with its own user class
    assert (tmp_path / "run" / "report.json").exists()


def test_locust_loads_the_directory_without_a_shape(tmp_path: Path) -> None:
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "--list"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.split()[2:] == ["ChatUser", "StreamUser"] or \
        sorted(done.stdout.split()[2:]) == ["ChatUser", "StreamUser"]
