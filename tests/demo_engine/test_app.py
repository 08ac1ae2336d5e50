"""The chat API's contract against a real uvicorn process, on SQLite and on PostgreSQL."""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from demo_engine_procs import API_KEY, RunningEngine, engine_process, free_port, wait_until

SESSIONS = "/api/engine/chat/sessions"
REPLY_FIELDS = {"message_id", "session_id", "content", "model", "input_tokens", "output_tokens",
                "total_tokens", "cost_usd", "latency_ms", "finish_reason"}


def _unique(text: str = "hello") -> str:
    return f"{text} {uuid.uuid4().hex}"


def _new_session(client: httpx.Client, **body: object) -> dict:
    response = client.post(SESSIONS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_health_needs_no_key_and_names_storage(engine: RunningEngine, request: pytest.FixtureRequest) -> None:
    response = httpx.get(engine.url + "/api/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["storage"] == request.node.callspec.params["engine"]
    assert body["leaks"] == {}


def test_create_session_answers_201_with_aria_fields(engine: RunningEngine) -> None:
    with engine.client() as client:
        created = _new_session(client, agent_id="agent-7", model="aria-large", title="t",
                               some_aria_field={"ignored": True})
        defaults = client.post(SESSIONS)  # no body at all: every field has a default
    assert {"id", "agent_id", "model", "status", "session_type", "created_at"} <= set(created)
    assert (created["agent_id"], created["model"], created["status"]) == ("agent-7", "aria-large", "active")
    assert defaults.status_code == 201
    assert defaults.json()["status"] == "active" and defaults.json()["id"] != created["id"]


def test_message_reply_has_every_field_and_consistent_tokens(engine: RunningEngine) -> None:
    with engine.client() as client:
        session = _new_session(client)
        response = client.post(f"{SESSIONS}/{session['id']}/messages",
                               json={"content": _unique(), "enable_thinking": True})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert REPLY_FIELDS <= set(reply)
    assert reply["session_id"] == session["id"] and reply["model"] == session["model"]
    assert reply["total_tokens"] == reply["input_tokens"] + reply["output_tokens"]
    assert reply["output_tokens"] > 0 and reply["cost_usd"] > 0 and reply["content"]
    assert reply["finish_reason"] == "stop"


def test_context_window_feeds_later_messages(engine: RunningEngine) -> None:
    with engine.client() as client:
        session = _new_session(client)
        first = client.post(f"{SESSIONS}/{session['id']}/messages", json={"content": _unique()}).json()
        second = client.post(f"{SESSIONS}/{session['id']}/messages", json={"content": _unique()}).json()
    assert second["input_tokens"] > first["input_tokens"]  # the first exchange is now context


def test_get_session_returns_its_messages_in_order(engine: RunningEngine) -> None:
    contents = [_unique("one"), _unique("two")]
    with engine.client() as client:
        session = _new_session(client, title="ordered")
        replies = [client.post(f"{SESSIONS}/{session['id']}/messages", json={"content": c}).json()
                   for c in contents]
        response = client.get(f"{SESSIONS}/{session['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == session["id"] and body["title"] == "ordered"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in body["messages"][::2]] == contents
    assert [m["id"] for m in body["messages"][1::2]] == [r["message_id"] for r in replies]


def test_delete_is_a_soft_end(engine: RunningEngine) -> None:
    with engine.client() as client:
        session = _new_session(client)
        client.post(f"{SESSIONS}/{session['id']}/messages", json={"content": _unique()})
        ended = client.delete(f"{SESSIONS}/{session['id']}")
        after = client.get(f"{SESSIONS}/{session['id']}")
        message = client.post(f"{SESSIONS}/{session['id']}/messages", json={"content": _unique()})
        again = client.delete(f"{SESSIONS}/{session['id']}")
    assert ended.status_code == 200
    assert ended.json() == {"status": "ended", "session_id": session["id"]}
    assert after.status_code == 200 and after.json()["status"] == "ended"
    assert len(after.json()["messages"]) == 2  # soft: history kept
    assert message.status_code == 409 and "ended" in message.json()["error"]
    assert again.status_code == 200


def test_identical_message_in_same_session_is_409_but_not_across_sessions(engine: RunningEngine) -> None:
    content = _unique("same")
    with engine.client() as client:
        first, other = _new_session(client), _new_session(client)
        ok = client.post(f"{SESSIONS}/{first['id']}/messages", json={"content": content})
        repeat = client.post(f"{SESSIONS}/{first['id']}/messages", json={"content": content})
        elsewhere = client.post(f"{SESSIONS}/{other['id']}/messages", json={"content": content})
    assert ok.status_code == 200
    assert repeat.status_code == 409 and "duplicate" in repeat.json()["error"]
    assert elsewhere.status_code == 200


def test_concurrent_users_are_all_served_and_stored(engine: RunningEngine) -> None:
    """More concurrent users than PostgreSQL pool connections: nobody waits forever or fails."""
    async def user(client: httpx.AsyncClient) -> tuple[str, list[int]]:
        sid = (await client.post(SESSIONS)).json()["id"]
        statuses = [(await client.post(f"{SESSIONS}/{sid}/messages", json={"content": _unique(str(i))})).status_code
                    for i in range(4)]
        return sid, statuses

    async def crowd() -> list[tuple[str, list[int]]]:
        async with httpx.AsyncClient(base_url=engine.url, headers={"X-API-Key": API_KEY}, timeout=60) as client:
            return await asyncio.gather(*(user(client) for _ in range(16)))

    results = asyncio.run(crowd())
    assert all(statuses == [200] * 4 for _, statuses in results)
    with engine.client() as client:
        counts = [len(client.get(f"{SESSIONS}/{sid}").json()["messages"]) for sid, _ in results]
    assert counts == [8] * 16


def test_every_engine_route_needs_the_key(engine: RunningEngine) -> None:
    with engine.client() as client:
        session = _new_session(client)
    sid = session["id"]
    calls = [("POST", SESSIONS, {}), ("GET", f"{SESSIONS}/{sid}", None),
             ("POST", f"{SESSIONS}/{sid}/messages", {"content": _unique()}), ("DELETE", f"{SESSIONS}/{sid}", None)]
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": f"Bearer {API_KEY}"}):
        for method, path, body in calls:
            response = httpx.request(method, engine.url + path, json=body, headers=headers, timeout=10)
            assert response.status_code == 401, (method, path, headers)
            assert "X-API-Key" in response.json()["error"]


def _bad_requests(sid: str, ended: str) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    json_type = {"content-type": "application/json"}
    msgs = f"{SESSIONS}/{sid}/messages"
    cases: list[tuple[str, str, dict[str, str], bytes | None]] = [
        ("POST", msgs, json_type, b'{"content": '),
        ("POST", msgs, json_type, b"[1, 2]"),
        ("POST", msgs, json_type, b'"just a string"'),
        ("POST", msgs, json_type, b"null"),
        ("POST", msgs, json_type, b"{}"),
        ("POST", msgs, json_type, b'{"content": null}'),
        ("POST", msgs, json_type, b'{"content": 42}'),
        ("POST", msgs, json_type, b'{"content": ""}'),
        ("POST", msgs, json_type, b'{"content": "   "}'),
        ("POST", msgs, json_type, b'{"content": "nul \\u0000 inside"}'),
        ("POST", msgs, json_type, b'{"content": "lone \\ud800 surrogate"}'),
        ("POST", msgs, json_type, b'{"content": "x", "enable_thinking": "yes"}'),
        ("POST", msgs, json_type, b'{"content": "' + b"x" * 200_001 + b'"}'),
        ("POST", msgs, json_type, b"\xff\xfe not utf-8"),
        ("POST", msgs, {"content-type": "text/plain"}, b"content=hello"),
        ("POST", msgs, {}, None),
        ("POST", f"{SESSIONS}/{uuid.uuid4()}/messages", json_type, b'{"content": "to nowhere"}'),
        ("POST", f"{SESSIONS}/{ended}/messages", json_type, b'{"content": "after the end"}'),
        ("POST", f"{SESSIONS}/not-a-uuid/messages", json_type, b'{"content": "x"}'),
        ("POST", f"{SESSIONS}/%00/messages", json_type, b'{"content": "x"}'),
        ("GET", f"{SESSIONS}/{uuid.uuid4()}", {}, None),
        ("GET", f"{SESSIONS}/{'9' * 5000}", {}, None),
        ("GET", f"{SESSIONS}/caf%C3%A9%00", {}, None),
        ("DELETE", f"{SESSIONS}/{uuid.uuid4()}", {}, None),
        ("DELETE", f"{SESSIONS}/x'; DROP TABLE chat_sessions; --", {}, None),
        ("POST", SESSIONS, json_type, b'{"agent_id": 5}'),
        ("POST", SESSIONS, json_type, b'{"title": "' + b"t" * 600 + b'"}'),
        ("POST", SESSIONS, json_type, b'{"model": "m\\u0000"}'),
        ("POST", SESSIONS, json_type, b"[]"),
        ("POST", SESSIONS, json_type, b"{bad"),
        ("PUT", f"{SESSIONS}/{sid}", json_type, b"{}"),
        ("PATCH", SESSIONS, json_type, b"{}"),
        ("GET", "/api/engine/nothing-here", {}, None),
    ]
    rng = random.Random(20261126)  # fixed seed: the same junk every run
    for _ in range(40):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        cases.append(("POST", rng.choice([msgs, SESSIONS]), json_type, junk))
    return cases


def test_bad_inputs_get_a_json_4xx_never_a_500(engine: RunningEngine) -> None:
    with engine.client() as client:
        sid = _new_session(client)["id"]
        ended = _new_session(client)["id"]
        assert client.delete(f"{SESSIONS}/{ended}").status_code == 200
        for method, path, headers, body in _bad_requests(sid, ended):
            response = client.request(method, path, headers=headers, content=body)
            where = f"{method} {path[:80]} {body[:60] if body else body!r}"
            assert 400 <= response.status_code < 500, f"{where} -> {response.status_code} {response.text[:200]}"
            error = response.json()
            assert isinstance(error.get("error") or error.get("detail"), (str, list)), where
        # and the engine still serves normally afterwards
        ok = client.post(f"{SESSIONS}/{sid}/messages", json={"content": _unique()})
    assert ok.status_code == 200
    assert "Traceback" not in engine.log()


def test_rate_limit_answers_429_with_json_and_retry_after(launch) -> None:  # type: ignore[no-untyped-def]
    running = launch("--rate-limit-rps", "0.01", "--rate-limit-burst", "3")  # refills 1 per 100 s
    with running.client() as client:
        statuses = [client.post(SESSIONS).status_code for _ in range(5)]
        limited = client.post(SESSIONS)
        health = httpx.get(running.url + "/api/health", timeout=10)
    assert statuses[:3] == [201, 201, 201] and statuses[3:] == [429, 429]
    assert limited.status_code == 429
    assert "rate limit" in limited.json()["error"] and int(limited.headers["retry-after"]) >= 1
    assert health.status_code == 200  # health is never limited


@pytest.mark.slow
def test_sessions_survive_a_restart_on_the_same_database(database_url: str) -> None:
    content = _unique("remember me")
    with engine_process(["--database-url", database_url]) as first, first.client() as client:
        sid = _new_session(client)["id"]
        assert client.post(f"{SESSIONS}/{sid}/messages", json={"content": content}).status_code == 200
    with engine_process(["--database-url", database_url]) as second, second.client() as client:
        session = client.get(f"{SESSIONS}/{sid}").json()
        # the restarted engine rebuilds the context window from storage
        follow_up = client.post(f"{SESSIONS}/{sid}/messages", json={"content": _unique()}).json()
    assert session["messages"][0]["content"] == content
    assert follow_up["input_tokens"] > len(content) // 4


@pytest.mark.slow
def test_uvicorn_workers_share_one_default_sqlite_file() -> None:
    """`uvicorn memsoak.demo_engine.app:app --workers 2` with no DATABASE_URL: any worker serves any session."""
    argv = [sys.executable, "-m", "uvicorn", "memsoak.demo_engine.app:app", "--port", "{port}",
            "--workers", "2", "--log-level", "warning"]
    with engine_process([], argv=argv, env={"DATABASE_URL": ""}) as running:
        folder = Path(tempfile.gettempdir()) / f"memsoak-demo-engine-{os.getuid()}-{running.proc.pid}"
        pids: set[int] = set()

        def both_workers_answered() -> bool:
            pids.add(httpx.get(running.url + "/api/health", timeout=10).json()["pid"])
            return len(pids) == 2

        wait_until(both_workers_answered, 60, "health answered by two worker pids")
        with running.client() as client:
            sid = _new_session(client)["id"]
        statuses = []
        for index in range(12):  # a new connection each time, so both workers take turns
            with running.client() as client:
                statuses.append(client.post(f"{SESSIONS}/{sid}/messages",
                                            json={"content": _unique(str(index))}).status_code)
        with running.client() as client:
            stored = client.get(f"{SESSIONS}/{sid}").json()
    shutil.rmtree(folder, ignore_errors=True)
    assert statuses == [200] * 12
    assert len(stored["messages"]) == 24


def test_plain_uvicorn_with_bad_settings_exits_2_with_one_line() -> None:
    env = {**os.environ, "DEMO_LEAKS": "native,teleport"}
    result = subprocess.run([sys.executable, "-m", "uvicorn", "memsoak.demo_engine.app:app", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=60)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2
    assert len(lines) == 1 and "unknown leak 'teleport'" in lines[0], result.stderr
