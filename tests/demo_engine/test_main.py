"""`memsoak-demo-engine` as a command: flags for every setting, one-line errors, clean SIGTERM."""
from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

from dataclasses import fields

import httpx
import pytest

from memsoak.demo_engine.settings import Settings, env_name, flag_name
from demo_engine_procs import command, engine_process, free_port, wait_until


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command("memsoak-demo-engine", "memsoak.demo_engine"), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_setting_with_its_environment_name() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for field in fields(Settings):
        assert flag_name(field.name) in result.stdout and env_name(field.name) in result.stdout


@pytest.mark.parametrize("args, says", [
    (["--leaks", "native,teleport"], "unknown leak 'teleport'"),
    (["--llm-latency-ms", "soon"], "DEMO_LLM_LATENCY_MS"),
    (["--database-url", "mysql://x@localhost/db"], "DATABASE_URL"),
    (["--database-url", "postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=5"], "cannot use PostgreSQL"),
    (["--workers", "0"], "--workers"),
])
def test_bad_settings_exit_2_with_one_line_and_no_traceback(args: list[str], says: str) -> None:
    result = _run("--port", str(free_port()), *(a.format(port=free_port()) for a in args))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith("memsoak-demo-engine: error:")


def test_sigterm_stops_the_engine_and_removes_its_temp_database() -> None:
    with engine_process(["--leaks", "asyncio_task,fd"]) as running:
        match = wait_until(lambda: re.search(r"sqlite at ([^,\s]+)", running.log()), 30, "startup line")
        database = Path(match.group(1))
        assert database.exists()
        with running.client() as client:  # a leaked never-ending task must not block shutdown
            assert client.post("/api/engine/chat/sessions").status_code == 201
        running.proc.send_signal(signal.SIGTERM)
        returncode = running.proc.wait(timeout=30)
    assert returncode in (0, 128 + signal.SIGTERM)
    assert not database.parent.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(running.url + "/api/health", timeout=2)


def test_strict_flag_takes_no_value_and_says_so_at_start() -> None:
    with engine_process(["--strict"]) as running:
        line = wait_until(lambda: re.search(r"serving .*", running.log()), 30, "startup line")
        health = running.health()
    assert "mode strict (real Aria protocol)" in line.group(0)
    assert (health["mode"], health["ws_frames"], health["rate_limiter"]) == ("strict", "aria", "aria")
