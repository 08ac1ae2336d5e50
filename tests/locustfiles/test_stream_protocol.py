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
        return [sys.executable, "-m", "memsoak.profiler.run", "--host", "127.0.0.1", "--port", str(self.hook_port),
                "--interval", "0.5", "--", sys.executable, str(SERVER), "--port", str(self.port),
                "--keepalive-s", "0.3", *self.engine_args]


IDENTITY = ["--extra-headers", "X-Forwarded-For: 10.0.0.{user_index}"]
STRICT = ["--strict", "--ws-keepalive-s", "0.5"]
RUNS: dict[str, dict[str, Any]] = {
    "real": {"server": ["--never-end-every", "5", "--unknown-frame", "mystery"],
             "args": ["--ws-reply-timeout-s", "2"]},
    "documented": {"server": ["--documented"], "args": []},
    "ws_key": {"server": ["--ws-key", "other"], "args": []},
    # the demo engine in strict mode: Aria's frames, a keepalive every 0.5 s, Aria's rate limiter
    # (50 POSTs per client in 5 s), the key required; every 4th reply stalls (pongs only)
    "strict": {"strict": [*STRICT, "--ws-stall-every", "4"], "users": 6,
               "args": ["--ws-reply-timeout-s", "3", *IDENTITY], "classes": ["StreamUser"]},
    "strict_identity": {"strict": STRICT, "users": 10, "args": IDENTITY, "classes": []},
    "strict_shared": {"strict": STRICT, "users": 10, "args": [], "classes": []},
    "strict_key": {"strict": STRICT, "users": 3, "args": ["--api-key", "wrong", *IDENTITY], "classes": ["StreamUser"]},
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
            if "strict" in spec:
                servers[name] = DemoEngine(log=log, engine_args=spec["strict"]).start()
            else:
                servers[name] = AriaLike(log=log, engine_args=spec["server"]).start()
        started = {}
        t0 = time.monotonic()
        for name, spec in RUNS.items():
            cmd = locust_cmd(servers[name], folder / name, "--messages-min", "3", "--messages-max", "6",
                             *spec["args"], run_time=RUN_S, users=spec.get("users", 3))
            started[name] = procs.start(cmd + spec.get("classes", ["StreamUser"]), name)
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
    # TTFT from the first content frame, once per reply: the ended ones, plus at most one per user
    # cut off by the end of the run after its first token
    assert ended <= first["num_requests"] <= ended + 3
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
    assert rows[STREAM]["num_requests"] <= rows[FIRST]["num_requests"] <= rows[STREAM]["num_requests"] + 3


@pytest.mark.slow
def test_a_close_with_4401_is_a_failure_that_names_the_code(runs) -> None:
    _code, run_dir, text, _took = runs["ws_key"]
    failures = table(run_dir)[STREAM]["failures"]
    assert set(failures) == {"WS closed 4401 Unauthorized before the reply ended"}, text[-3000:]


@pytest.mark.slow
def test_strict_engine_stream_records_messages_and_ttft_and_names_the_stalled_reply(runs) -> None:
    _code, run_dir, text, took = runs["strict"]
    rows = table(run_dir)
    total, first = rows[STREAM], rows[FIRST]
    ended = total["num_requests"] - total["num_failures"]
    assert ended > 5 and first["num_requests"] >= ended, text[-3000:]
    assert first["avg_ms"] <= total["avg_ms"]
    # stalled replies send two content frames, then only pongs every 0.5 s: the 3 s deadline holds
    # (on a busy machine a stall can also come before its content frames: the other named cause)
    assert total["num_failures"] >= 1
    assert set(total["failures"]) <= {
        "WS reply never ended: no done/stream_end within 3 s (text stopped coming)",
        "WS reply never ended: no done/stream_end within 3 s (only frames without text (keepalives?))"}
    assert "WS reply never ended: no done/stream_end within 3 s (text stopped coming)" in total["failures"]
    assert "is in no --ws-*-frames list" not in text  # every strict frame has a role by default
    assert took < RUN_S + 60


def all_failures(run_dir: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in table(run_dir).values():
        for error, count in row["failures"].items():
            out[error] = out.get(error, 0) + count
    return out


@pytest.mark.slow
def test_per_user_forwarded_for_gets_no_429_from_the_strict_engine_and_a_shared_address_does(runs) -> None:
    _code, identity_dir, identity_text, _took = runs["strict_identity"]
    _code, shared_dir, shared_text, _took = runs["strict_shared"]
    identity, shared = table(identity_dir), table(shared_dir)
    posts = sum(r["num_requests"] for k, r in identity.items() if k.startswith("POST "))
    assert posts > 100, identity_text[-3000:]  # more than 50 POSTs in 5 s from all users together
    assert not any("429" in error for error in all_failures(identity_dir)), all_failures(identity_dir)
    assert "were rate-limited" not in identity_text
    assert all_failures(shared_dir).get("HTTP 429 Too Many Requests", 0) > 10, shared_text[-3000:]
    assert shared_text.count('--extra-headers "X-Forwarded-For: 10.0.0.{user_index}"') == 2


@pytest.mark.slow
def test_a_wrong_key_on_the_strict_engine_is_named_with_its_header(runs) -> None:
    _code, run_dir, text, _took = runs["strict_key"]
    assert set(all_failures(run_dir)) == {"HTTP 401 Unauthorized"}, text[-3000:]
    assert text.count("requests were refused as unauthorized") == 2
