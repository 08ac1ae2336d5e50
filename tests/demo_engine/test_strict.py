"""Strict mode: the real Aria protocol, against a real engine process (SQLite and PostgreSQL).

Frames in Aria's order with keepalive pongs in between, Aria's handshake refusal (and the
accept-then-4401 option), a reply that never ends, soft delete and duplicate messages with Aria's
404s, and Aria's per-client rate limiter keyed on X-Forwarded-For.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import websocket  # websocket-client

from demo_engine_procs import (API_KEY, STORAGES, RunningEngine, database_for, engine_process, free_port,
                               wait_until)

SESSIONS = "/api/engine/chat/sessions"
KEEPALIVE_S = 1.0


@pytest.fixture(scope="module", params=STORAGES)
def strict(request: pytest.FixtureRequest) -> Iterator[RunningEngine]:
    with ExitStack() as stack:
        url = database_for(request, stack)
        yield stack.enter_context(engine_process(
            ["--strict", "--database-url", url, "--llm-latency-ms", "5", "--ws-keepalive-s", str(KEEPALIVE_S)]))


def _client(engine: RunningEngine, client_ip: str | None = None) -> httpx.Client:
    """Each test is its own client for the rate limiter (the module shares one engine)."""
    return engine.client(headers={"X-Forwarded-For": client_ip or f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"})


def _session(engine: RunningEngine) -> str:
    with _client(engine) as client:
        response = client.post(SESSIONS)
        assert response.status_code == 201, response.text
        return response.json()["id"]


def _ws(engine: RunningEngine, session_id: str, key: str = API_KEY) -> websocket.WebSocket:
    url = engine.url.replace("http://", "ws://") + f"/ws/chat/{session_id}?api_key={key}"
    return websocket.create_connection(url, timeout=20)


def _reply(conn: websocket.WebSocket, message: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Send one message; frames up to stream_end or error (pongs left out, counted), at most 1,000."""
    conn.send(json.dumps({"type": "message", **message}))
    frames: list[dict[str, Any]] = []
    pongs = 0
    for _ in range(1000):
        frame = json.loads(conn.recv())
        if frame["type"] == "pong":
            pongs += 1
            continue
        frames.append(frame)
        if frame["type"] in ("stream_end", "error"):
            return frames, pongs
    raise AssertionError(f"no stream_end after 1,000 frames: {[f['type'] for f in frames][:20]}")


def _collapse(kinds: list[str]) -> list[str]:
    """Runs of the same frame type as one ("content" x 30 -> "content")."""
    return [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]


def test_frames_come_in_arias_order_with_tools_and_thinking(strict: RunningEngine) -> None:
    sid = _session(strict)
    conn = _ws(strict, sid)
    try:
        full, _ = _reply(conn, {"content": f"tools please {uuid.uuid4().hex}", "enable_thinking": True})
        plain, _ = _reply(conn, {"content": f"no tools {uuid.uuid4().hex}", "enable_tools": False})
    finally:
        conn.close()
    assert _collapse([f["type"] for f in full]) == [
        "stream_start", "iteration_start", "thinking", "iteration_end", "tool_call", "tool_result",
        "iteration_start", "content", "iteration_end", "stream_end"]
    assert _collapse([f["type"] for f in plain]) == [
        "stream_start", "iteration_start", "content", "iteration_end", "stream_end"]
    call, result = (next(f for f in full if f["type"] == kind) for kind in ("tool_call", "tool_result"))
    assert call["id"] == result["id"] and call["name"] == result["name"] and result["success"] is True
    assert isinstance(json.loads(call["arguments"]), dict)
    end = full[-1]
    assert set(end) == {"type", "message_id", "finish_reason", "model", "tokens_input", "tokens_output", "cost"}
    assert end["finish_reason"] == "stop" and end["tokens_output"] > 0
    assert [f["iteration"] for f in full if f["type"] == "iteration_start"] == [1, 2]
    with _client(strict) as client:
        stored = client.get(f"{SESSIONS}/{sid}/messages").json()["messages"]
    assistant = [m for m in stored if m["role"] == "assistant"]
    assert assistant[0]["id"] == end["message_id"]
    assert "".join(f["content"] for f in full if f["type"] == "content") == assistant[0]["content"]


@pytest.mark.slow
def test_keepalive_pongs_arrive_at_their_interval_while_idle(strict: RunningEngine) -> None:
    conn = _ws(strict, _session(strict))
    try:
        stamps = []
        for _ in range(4):
            assert json.loads(conn.recv()) == {"type": "pong"}
            stamps.append(time.monotonic())
    finally:
        conn.close()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(0.5 * KEEPALIVE_S < gap < 2.5 * KEEPALIVE_S for gap in gaps), gaps


def test_client_ping_gets_pong_and_bad_frames_get_arias_error_words(strict: RunningEngine) -> None:
    conn = _ws(strict, _session(strict))
    try:
        answers = []
        for raw in (json.dumps({"type": "ping"}), "not json", json.dumps({"type": "typing"}),
                    json.dumps({"type": "message", "content": "   "})):
            conn.send(raw)
            frame = json.loads(conn.recv())
            while frame["type"] == "pong" and raw != json.dumps({"type": "ping"}):
                frame = json.loads(conn.recv())  # a keepalive may come first
            answers.append(frame)
    finally:
        conn.close()
    assert answers == [{"type": "pong"}, {"type": "error", "message": "Invalid JSON"},
                       {"type": "error", "message": "Unknown message type: typing"},
                       {"type": "error", "message": "Empty message content"}]


@pytest.mark.slow
def test_a_reply_that_never_ends_sends_only_keepalives(strict: RunningEngine) -> None:
    conn = _ws(strict, _session(strict))
    conn.settimeout(3 * KEEPALIVE_S)
    try:
        conn.send(json.dumps({"type": "message", "content": f"[never-end] {uuid.uuid4().hex}",
                              "enable_tools": False}))
        frames = [json.loads(conn.recv()) for _ in range(12)]  # ~8 keepalive intervals
    finally:
        conn.close()
    kinds = [f["type"] for f in frames]
    assert [kind for kind in kinds if kind != "pong"] == ["stream_start", "iteration_start", "content", "content"]
    assert kinds[-8:] == ["pong"] * 8
    assert strict.health()["status"] == "ok"


@pytest.mark.slow
def test_every_nth_reply_never_ends_with_ws_stall_every(launch: Callable[..., RunningEngine]) -> None:
    running = launch("--strict", "--ws-stall-every", "2", "--ws-keepalive-s", "0.5")
    conn = _ws(running, _session(running))
    conn.settimeout(2)
    try:
        first, _ = _reply(conn, {"content": f"one {uuid.uuid4().hex}"})
        conn.send(json.dumps({"type": "message", "content": f"two {uuid.uuid4().hex}"}))
        second = [json.loads(conn.recv())["type"] for _ in range(16)]
    finally:
        conn.close()
    assert first[-1]["type"] == "stream_end"
    assert "stream_end" not in second and second[-4:] == ["pong"] * 4


def test_a_bad_key_is_refused_at_the_handshake_like_aria(strict: RunningEngine) -> None:
    sid = _session(strict)
    for session_id, key in ((sid, "wrong"), (sid, ""), (str(uuid.uuid4()), API_KEY), ("not-a-uuid", API_KEY)):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            _ws(strict, session_id, key)
        assert refused.value.status_code == 403  # uvicorn's answer to close() before accept()


def test_a_bad_key_gets_close_code_4401_with_ws_auth_reject_close(launch: Callable[..., RunningEngine]) -> None:
    running = launch("--strict", "--ws-auth-reject", "close")
    conn = _ws(running, _session(running), key="wrong")
    try:
        error = json.loads(conn.recv())
        opcode, frame = conn.recv_data_frame(True)
    finally:
        conn.close()
    assert error == {"type": "error", "message": "Unauthorized — invalid or missing API key"}
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(frame.data[:2], "big") == 4401


def test_delete_is_a_soft_end_with_arias_404s_and_the_websocket_reopens(strict: RunningEngine) -> None:
    with _client(strict) as client:
        sid = client.post(SESSIONS).json()["id"]
        kept = client.post(f"{SESSIONS}/{sid}/messages", json={"content": f"keep me {uuid.uuid4().hex}"})
        ended = client.delete(f"{SESSIONS}/{sid}")
        again = client.delete(f"{SESSIONS}/{sid}")
        get = client.get(f"{SESSIONS}/{sid}")
        post = client.post(f"{SESSIONS}/{sid}/messages", json={"content": "after the end"})
        unknown = client.delete(f"{SESSIONS}/{uuid.uuid4()}")
    assert kept.status_code == 200
    assert ended.status_code == again.status_code == 200
    assert ended.json() == {"status": "ended", "session_id": sid}
    assert get.status_code == 404 and get.json()["detail"] == f"Session {sid} has already ended"
    assert post.status_code == 404
    assert post.json()["detail"] == f"Session {sid} has ended — create a new session"
    assert unknown.status_code == 404 and unknown.json()["detail"].endswith(" not found")
    conn = _ws(strict, sid)  # Aria's StreamManager reactivates an ended session
    try:
        frames, _ = _reply(conn, {"content": f"back again {uuid.uuid4().hex}"})
    finally:
        conn.close()
    assert frames[-1]["type"] == "stream_end"
    with _client(strict) as client:
        reopened = client.get(f"{SESSIONS}/{sid}").json()
    assert reopened["status"] == "active" and reopened["ended_at"] is None
    assert [m["id"] for m in reopened["messages"]][1] == kept.json()["message_id"]  # history kept


def test_a_duplicate_message_is_arias_404_over_http_and_an_error_frame_over_ws(strict: RunningEngine) -> None:
    content = f"say it twice {uuid.uuid4().hex}"
    with _client(strict) as client:
        sid, other = client.post(SESSIONS).json()["id"], client.post(SESSIONS).json()["id"]
        first = client.post(f"{SESSIONS}/{sid}/messages", json={"content": content})
        repeat = client.post(f"{SESSIONS}/{sid}/messages", json={"content": content})
        elsewhere = client.post(f"{SESSIONS}/{other}/messages", json={"content": content})
    assert first.status_code == 200 and elsewhere.status_code == 200
    assert repeat.status_code == 404
    assert repeat.json()["detail"] == "Duplicate message — same content sent within 5s"
    conn = _ws(strict, other)
    try:
        duplicate, _ = _reply(conn, {"content": content})
        fresh, _ = _reply(conn, {"content": f"fresh {uuid.uuid4().hex}"})
    finally:
        conn.close()
    assert duplicate == [{"type": "stream_start"},
                         {"type": "error", "message": "Duplicate message — same content sent within 5s"}]
    assert fresh[-1]["type"] == "stream_end"


def test_one_client_past_50_posts_in_5_s_gets_429_and_is_blocked(strict: RunningEngine) -> None:
    with _client(strict, "10.200.0.1") as client:
        statuses = [client.post(SESSIONS).status_code for _ in range(52)]
        blocked = client.delete(f"{SESSIONS}/{uuid.uuid4()}")
        read = client.get("/api/health")
        sid_read = client.get(f"{SESSIONS}/{uuid.uuid4()}")
    with _client(strict, "10.200.0.2") as neighbour:
        other = neighbour.post(SESSIONS)
    assert statuses[:50] == [201] * 50 and statuses[50:] == [429, 429]
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
    assert blocked.json()["detail"] == "Rate limit exceeded: rate_limited"
    assert "X-Forwarded-For" in blocked.json()["error"]
    assert read.status_code == 200 and sid_read.status_code == 404  # reads are never limited
    assert other.status_code == 201  # per client, not per engine


def test_distinct_forwarded_clients_share_no_limit(strict: RunningEngine) -> None:
    statuses: list[int] = []
    clients = [_client(strict, f"10.201.0.{n}") for n in range(1, 9)]
    try:
        for _ in range(45):  # 8 clients x 45 POSTs within seconds: 360 POSTs, none over 50 / 5 s
            statuses.extend(client.post(SESSIONS).status_code for client in clients)
    finally:
        for client in clients:
            client.close()
    assert len(statuses) == 360 and set(statuses) == {201}


def test_the_per_minute_window_and_the_switch(launch: Callable[..., RunningEngine]) -> None:
    limited = launch("--strict", "--aria-limit-per-minute", "20")
    unlimited = launch("--strict", "--rate-limiter", "off")
    with limited.client() as client:  # no X-Forwarded-For: the peer address is the client
        per_minute = [client.post(SESSIONS).status_code for _ in range(21)]
        refused = client.post(SESSIONS)
    with unlimited.client() as client:
        free = {client.post(SESSIONS).status_code for _ in range(60)}
    assert per_minute == [201] * 20 + [429]
    assert refused.json()["detail"] == "Rate limit exceeded: rate_limited"
    assert free == {201}


def test_strict_engine_requires_the_key_on_every_engine_route(strict: RunningEngine) -> None:
    sid = _session(strict)
    with httpx.Client(base_url=strict.url, timeout=10,
                      headers={"X-Forwarded-For": "10.202.0.1", "X-API-Key": "wrong"}) as client:
        answers = [client.post(SESSIONS), client.get(f"{SESSIONS}/{sid}"), client.delete(f"{SESSIONS}/{sid}"),
                   client.post(f"{SESSIONS}/{sid}/messages", json={"content": "x"})]
    assert {answer.status_code for answer in answers} == {401}
    assert {answer.json()["detail"] for answer in answers} == {"Invalid or missing API key"}
    assert strict.health()["mode"] == "strict"


@pytest.mark.slow
def test_token_delay_spaces_the_content_frames(launch: Callable[..., RunningEngine]) -> None:
    running = launch("--strict", "--ws-token-delay-ms", "100")
    conn = _ws(running, _session(running))
    try:
        conn.send(json.dumps({"type": "message", "content": f"slowly {uuid.uuid4().hex}", "enable_tools": False}))
        stamps = []
        for _ in range(1000):
            frame = json.loads(conn.recv())
            if frame["type"] == "content":
                stamps.append(time.monotonic())
            if frame["type"] == "stream_end":
                break
    finally:
        conn.close()
    assert len(stamps) > 5
    assert stamps[-1] - stamps[0] >= 0.8 * 0.1 * (len(stamps) - 1)


def _hook_sample(running: RunningEngine) -> dict[str, Any]:
    """A sample the hook took after this call started."""
    since = httpx.get(f"{running.hook_url}/health", timeout=30).json()["last_seq"]
    return wait_until(lambda: httpx.get(f"{running.hook_url}/samples?since={since}", timeout=30)
                      .json()["samples"], 30, "a new hook sample")[-1]


def _socket_round(running: RunningEngine, sockets: int = 15) -> None:
    """Open sockets and send a message on each: every fifth reply never ends, every fifth
    socket is dropped mid-reply without a close frame; then close the rest."""
    conns = [_ws(running, _session(running)) for _ in range(sockets)]
    for number, conn in enumerate(conns):
        never_ends, dropped = number % 5 == 0, number % 5 == 1
        conn.send(json.dumps({"type": "message",
                              "content": f"{'[never-end] ' if never_ends else ''}{uuid.uuid4().hex}"}))
        contents = 0
        for _ in range(1000):
            kind = json.loads(conn.recv())["type"]
            contents += kind == "content"
            if kind == "stream_end" or ((never_ends or dropped) and contents == 2):
                break
        if dropped:
            conn.shutdown()  # the socket goes away mid-reply, no close frame
    for conn in conns:
        conn.close()


@pytest.mark.slow
def test_closed_sockets_leave_no_task_or_fd_behind_under_the_hook() -> None:
    """Keepalive tasks and never-ending replies end with their socket: a strict engine soaked
    by a harness must not show growth that the harness's connections caused."""
    with engine_process(["--strict", "--ws-keepalive-s", "0.2", "--llm-latency-ms", "2",
                         "--ws-token-delay-ms", "20"],
                        hook_port=free_port(), hook_args=["--interval", "0.2"]) as running:
        _socket_round(running)  # warm-up: first-use allocations
        time.sleep(1.0)
        before = _hook_sample(running)
        for _ in range(3):
            _socket_round(running)
        time.sleep(3.0)  # the server sees the closes, and the dropped replies fail their next send
        after = _hook_sample(running)
    assert after["asyncio_tasks"] - before["asyncio_tasks"] <= 1
    assert after["open_fds"] - before["open_fds"] <= 1


@pytest.mark.slow
def test_plain_uvicorn_workers_are_strict_from_the_environment() -> None:
    """`DEMO_STRICT=1 uvicorn memsoak.demo_engine.app:app --workers 2`: every worker speaks Aria's frames."""
    argv = [sys.executable, "-m", "uvicorn", "memsoak.demo_engine.app:app", "--port", "{port}",
            "--workers", "2", "--log-level", "warning"]
    with engine_process([], argv=argv, env={"DATABASE_URL": "", "DEMO_STRICT": "1"}) as running:
        folder = Path(tempfile.gettempdir()) / f"memsoak-demo-engine-{os.getuid()}-{running.proc.pid}"
        modes: dict[int, str] = {}

        def both_workers_answered() -> bool:
            health = running.health()
            modes[health["pid"]] = health["mode"]
            return len(modes) == 2

        wait_until(both_workers_answered, 60, "health answered by two worker pids")
        kinds = []
        for _ in range(4):  # new connections: both workers take turns
            conn = _ws(running, _session(running))
            try:
                frames, _ = _reply(conn, {"content": f"hello {uuid.uuid4().hex}", "enable_tools": False})
            finally:
                conn.close()
            kinds.append(_collapse([f["type"] for f in frames]))
    shutil.rmtree(folder, ignore_errors=True)
    assert set(modes.values()) == {"strict"}
    assert all(k == ["stream_start", "iteration_start", "content", "iteration_end", "stream_end"] for k in kinds)
