"""StreamUser against a real WebSocket server that streams like the real Aria engine.

The server (`aria_like_server.py`) runs under memsoak-run like any engine: real frames
(`stream_start`, `thinking`, `content`, `stream_end`), a keepalive `pong` every 0.3 s, a close with
4401 for a wrong key, and when asked every 5th reply never ends (keepalives only). Each case is one
headless Locust run; they run at once and each test reads its run's requests table and output.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from memsoak.engine import DemoEngine
from memsoak_procs import Procs, locust_cmd, output, wait

SERVER = Path(__file__).with_name("aria_like_server.py")
RUN_S = 10
STREAM = "WS /ws/chat/{id}"
FIRST = "WS /ws/chat/{id} [first token]"


class AriaLike(DemoEngine):
    """The Aria-like server under memsoak-run (DemoEngine's start/stop, another command)."""

    server_args: list[str] = []

    def command(self) -> list[str]:
        return [sys.executable, "-m", "profiler.run", "--host", "127.0.0.1", "--port", str(self.hook_port),
                "--interval", "0.5", "--", sys.executable, str(SERVER), "--port", str(self.port),
                "--keepalive-s", "0.3", *self.engine_args]


RUNS: dict[str, dict[str, Any]] = {
    "real": {"server": ["--never-end-every", "5", "--unknown-frame", "mystery"],
             "args": ["--ws-reply-timeout-s", "2"]},
    "documented": {"server": ["--documented"], "args": []},
    "ws_key": {"server": ["--ws-key", "other"], "args": []},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, Path, str, float]]]:
    folder = tmp_path_factory.mktemp("stream")
    procs = Procs(folder)
    logs, servers = [], {}
    try:
        for name, spec in RUNS.items():
            log = (folder / f"server-{name}.log").open("w")
            logs.append(log)
            servers[name] = AriaLike(log=log, engine_args=spec["server"]).start()
        started = {}
        t0 = time.monotonic()
        for name, spec in RUNS.items():
            cmd = locust_cmd(servers[name], folder / name, "--messages-min", "3", "--messages-max", "6",
                             *spec["args"], run_time=RUN_S, users=3) + ["StreamUser"]
            started[name] = procs.start(cmd, name)
        yield {name: (wait(proc, 180), folder / name / "run", output(proc), time.monotonic() - t0)
               for name, proc in started.items()}
    finally:
        procs.kill_all()
        for server in servers.values():
            server.stop(grace_s=5)
        for log in logs:
            log.close()


def table(run_dir: Path) -> dict[str, dict]:
    rows = json.loads((run_dir / "requests.json").read_text())
    return {f"{r['method']} {r['name']}": r for r in rows}


@pytest.mark.slow
def test_real_frames_record_messages_and_ttft_and_name_a_reply_that_never_ends(runs) -> None:
    _code, run_dir, text, took = runs["real"]
    rows = table(run_dir)
    total, first = rows[STREAM], rows[FIRST]
    ended = total["num_requests"] - total["num_failures"]
    assert ended > 5, text[-3000:]  # content frames counted as tokens, stream_end as the end
    assert first["num_requests"] == ended  # TTFT from the first content frame, once per ended reply
    assert first["avg_ms"] <= total["avg_ms"]
    # every 5th reply never ends: keepalives every 0.3 s did not keep it waiting past its 2 s deadline
    assert total["num_failures"] >= 1
    assert set(total["failures"]) == {
        "WS reply never ended: no done/stream_end within 2 s (only frames without text (keepalives?))"}
    assert "frame type 'mystery' is in no --ws-*-frames list" in text  # never silent about unknowns
    assert took < RUN_S + 60  # no user hung past the run time


@pytest.mark.slow
def test_documented_token_and_done_frames_work_too(runs) -> None:
    _code, run_dir, text, _took = runs["documented"]
    rows = table(run_dir)
    assert rows[STREAM]["num_requests"] > 5, text[-3000:]
    assert rows[STREAM]["num_failures"] == 0
    assert rows[FIRST]["num_requests"] == rows[STREAM]["num_requests"]


@pytest.mark.slow
def test_a_close_with_4401_is_a_failure_that_names_the_code(runs) -> None:
    _code, run_dir, text, _took = runs["ws_key"]
    failures = table(run_dir)[STREAM]["failures"]
    assert set(failures) == {"WS closed 4401 Unauthorized before the reply ended"}, text[-3000:]
