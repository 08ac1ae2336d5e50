"""WebSocket streaming at /ws/chat/{id}?api_key=, against a real engine on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import websocket  # websocket-client

from demo_engine_procs import API_KEY, RunningEngine

SESSIONS = "/api/engine/chat/sessions"


def _ws(engine: RunningEngine, session_id: str, key: str = API_KEY) -> websocket.WebSocket:
    url = engine.url.replace("http://", "ws://") + f"/ws/chat/{session_id}?api_key={key}"
    return websocket.create_connection(url, timeout=20)


def _session(engine: RunningEngine) -> str:
    with engine.client() as client:
        return client.post(SESSIONS).json()["id"]


def _exchange(conn: websocket.WebSocket, content: str) -> tuple[list[str], dict[str, Any]]:
    """Send one message; collect token frames until the done (or error) frame, at most 10,000."""
    conn.send(json.dumps({"type": "message", "content": content}))
    tokens: list[str] = []
    for _ in range(10_000):
        frame = json.loads(conn.recv())
        if frame["type"] != "token":
            return tokens, frame
        tokens.append(frame["content"])
    raise AssertionError("no done frame after 10,000 tokens")


def _close_code(conn: websocket.WebSocket) -> int | None:
    """Read frames up to the server's close frame (at most 10) and return its status code."""
    for _ in range(10):
        opcode, frame = conn.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")
    return None


def test_stream_sends_tokens_then_done_with_reply_fields(engine: RunningEngine) -> None:
    sid = _session(engine)
    conn = _ws(engine, sid)
    try:
        tokens, done = _exchange(conn, f"stream please {uuid.uuid4().hex}")
        tokens2, done2 = _exchange(conn, f"and again {uuid.uuid4().hex}")
    finally:
        conn.close()
    assert done["type"] == "done" and len(tokens) > 3
    assert "".join(tokens) == done["content"]
    assert {"message_id", "session_id", "input_tokens", "output_tokens", "total_tokens", "cost_usd",
            "latency_ms", "finish_reason", "model"} <= set(done)
    assert done["session_id"] == sid and done["output_tokens"] == len(tokens)
    assert done2["type"] == "done" and done2["input_tokens"] > done["input_tokens"]  # context kept
    with engine.client() as client:
        stored = client.get(f"{SESSIONS}/{sid}").json()["messages"]
    assert [m["id"] for m in stored[1::2]] == [done["message_id"], done2["message_id"]]


def test_refused_frames_get_an_error_and_the_stream_goes_on(engine: RunningEngine) -> None:
    conn = _ws(engine, _session(engine))
    try:
        replies = []
        for raw in ("not json", json.dumps([1]), json.dumps({"type": "ping"}),
                    json.dumps({"type": "message"}), json.dumps({"type": "message", "content": ""})):
            conn.send(raw)
            replies.append(json.loads(conn.recv()))
        conn.send_binary(b"\x00\x01")
        replies.append(json.loads(conn.recv()))
        content = f"twice {uuid.uuid4().hex}"
        _, first = _exchange(conn, content)
        _, duplicate = _exchange(conn, content)
        _, after = _exchange(conn, f"fresh {uuid.uuid4().hex}")
    finally:
        conn.close()
    assert [r["type"] for r in replies] == ["error"] * 6
    assert all(r["status"] == 400 and r["error"] for r in replies)
    assert first["type"] == "done"
    assert duplicate["type"] == "error" and duplicate["status"] == 409
    assert after["type"] == "done"


@pytest.mark.parametrize("problem", ["wrong_key", "unknown_session", "ended_session"])
def test_hopeless_connections_get_an_error_then_a_close_code(engine: RunningEngine, problem: str) -> None:
    sid = _session(engine)
    if problem == "ended_session":
        with engine.client() as client:
            client.delete(f"{SESSIONS}/{sid}")
    conn = _ws(engine, str(uuid.uuid4()) if problem == "unknown_session" else sid,
               key="wrong" if problem == "wrong_key" else API_KEY)
    try:
        error = json.loads(conn.recv())
        code = _close_code(conn)
    finally:
        conn.close()
    expected = {"wrong_key": 401, "unknown_session": 404, "ended_session": 409}[problem]
    assert error["type"] == "error" and error["status"] == expected
    assert code == 4000 + expected
