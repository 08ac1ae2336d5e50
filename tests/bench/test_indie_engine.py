"""bench/engines/indie_engine.py serves the chat paths the locustfiles drive, and its leaks grow."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from starlette.testclient import TestClient

ENGINE = Path(__file__).resolve().parents[2] / "bench" / "engines" / "indie_engine.py"


@pytest.fixture
def indie():
    spec = importlib.util.spec_from_file_location("indie_engine", ENGINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chat(client: TestClient, messages: int) -> str:
    created = client.post("/api/engine/chat/sessions")
    assert created.status_code == 201
    session_id = created.json()["id"]
    for n in range(messages):
        reply = client.post(f"/api/engine/chat/sessions/{session_id}/messages", json={"content": f"hello {n} world"})
        assert reply.status_code == 200 and reply.json()["content"]
    with client.websocket_connect(f"/ws/chat/{session_id}") as ws:
        ws.send_json({"type": "message", "content": "one two three"})
        frames = [ws.receive_json() for _ in range(4)]
    assert [f["type"] for f in frames] == ["token", "token", "token", "done"]
    assert client.get(f"/api/engine/chat/sessions/{session_id}").json()["messages"][-1]["role"] == "assistant"
    assert client.delete(f"/api/engine/chat/sessions/{session_id}").status_code == 200
    assert client.get(f"/api/engine/chat/sessions/{session_id}").status_code == 404
    return session_id


def test_clean_engine_keeps_nothing_per_message_and_bounds_its_sessions(indie):
    client = TestClient(indie.app)
    for _ in range(5):
        chat(client, 3)
    for _ in range(indie.MAX_SESSIONS + 10):
        client.post("/api/engine/chat/sessions")   # left open: the oldest are evicted
    assert len(indie.SESSIONS) == indie.MAX_SESSIONS
    assert indie.ERROR_LOG == [] and indie.LISTENERS == []


@pytest.mark.parametrize("leak, grows", [("exc_keep", "ERROR_LOG"), ("closure_registry", "LISTENERS")])
def test_each_planted_leak_keeps_one_thing_per_operation(indie, leak, grows):
    indie.PLANTED.add(leak)
    client = TestClient(indie.app)
    for _ in range(4):
        chat(client, 3)
    kept = getattr(indie, grows)
    # exc_keep: one per message (3 posted + 1 streamed per session); closure_registry: one per session
    assert len(kept) == (16 if leak == "exc_keep" else 4)
    if leak == "exc_keep":
        frame_locals = kept[0].__traceback__.tb_next.tb_frame.f_locals
        assert len(frame_locals["scratch"]) == 2048   # the traceback keeps the parser's buffer alive
