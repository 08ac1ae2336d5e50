"""Storage: the same behaviour from SQLite and a real PostgreSQL; bad URLs are one-line errors."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from memsoak.demo_engine.storage import open_storage, preflight
from demo_engine_procs import free_port


def _session_row(session_id: str) -> dict[str, object]:
    return {"id": session_id, "agent_id": "a", "model": "m", "title": None, "status": "active",
            "session_type": "chat", "created_at": "2026-01-01T00:00:00.000+00:00", "ended_at": None}


def _message(session_id: str, index: int) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "session_id": session_id, "role": "user" if index % 2 == 0 else "assistant",
            "content": f"message {index}", "created_at": f"2026-01-01T00:00:{index:02d}.000+00:00"}


def test_sessions_and_messages_round_trip(database_url: str) -> None:
    async def scenario():  # type: ignore[no-untyped-def]
        storage = open_storage(database_url, pool_size=2)
        await storage.open()
        try:
            sid, other = str(uuid.uuid4()), str(uuid.uuid4())
            await storage.create_session(_session_row(sid))
            await storage.create_session(_session_row(other))
            await storage.add_messages([_message(sid, i) for i in range(6)])
            await storage.add_messages([_message(other, 99)])
            # concurrent readers share the small pool without deadlock
            reads = await asyncio.gather(*(storage.get_session(sid) for _ in range(8)))
            everything = await storage.list_messages(sid)
            newest = await storage.list_messages(sid, newest=2)
            ended = await storage.end_session(sid, "2026-01-02T00:00:00.000+00:00")
            ended_again = await storage.end_session(sid, "2026-01-03T00:00:00.000+00:00")
            missing = await storage.get_session(str(uuid.uuid4()))
            return storage.kind, reads, everything, newest, ended, ended_again, missing
        finally:
            await storage.close()

    kind, reads, everything, newest, ended, ended_again, missing = asyncio.run(scenario())
    assert kind == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert all(row["status"] == "active" for row in reads)
    assert [m["content"] for m in everything] == [f"message {i}" for i in range(6)]
    assert [m["content"] for m in newest] == ["message 4", "message 5"]  # oldest first
    assert ended["status"] == "ended" and ended_again["ended_at"] == ended["ended_at"] == "2026-01-02T00:00:00.000+00:00"
    assert missing is None


@pytest.mark.parametrize("url, says", [
    ("mysql://root@localhost/db", "postgresql://"),
    ("sqlite:////nonexistent-dir/deeper/engine.sqlite3", "cannot open SQLite"),
])
def test_preflight_refuses_unusable_urls_in_one_line(url: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        preflight(url)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_preflight_names_an_unreachable_postgresql() -> None:
    with pytest.raises(ValueError) as caught:
        preflight(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=5")
    message = str(caught.value)
    assert "cannot use PostgreSQL" in message and "\n" not in message
