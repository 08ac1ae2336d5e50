"""Engine behaviour without HTTP: eviction reloads context from storage; refusals carry statuses."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from memsoak.demo_engine.engine import Engine, EngineError
from memsoak.demo_engine.settings import Settings


def _run(tmp_path: Path, scenario: Callable[[Engine], Awaitable[Any]], **overrides: Any) -> Any:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/engine.sqlite3", llm_latency_ms=0, **overrides)

    async def main() -> Any:
        engine = Engine(settings)
        await engine.start()
        try:
            return await scenario(engine)
        finally:
            await engine.stop()

    return asyncio.run(main())


def test_an_evicted_session_gets_its_context_back_from_storage(tmp_path: Path) -> None:
    async def scenario(engine: Engine) -> tuple[bool, int, int]:
        first = await engine.create_session(None, None, None, None)
        await engine.send_message(first["id"], "a long first message " * 20)
        await engine.create_session(None, None, None, None)  # max_live_sessions=1: evicts the first
        evicted = engine.sessions.get(first["id"]) is None
        reply = await engine.send_message(first["id"], "second")
        fresh = await engine.create_session(None, None, None, None)
        baseline = await engine.send_message(fresh["id"], "second")
        return evicted, reply["input_tokens"], baseline["input_tokens"]

    evicted, with_history, without = _run(tmp_path, scenario, max_live_sessions=1)
    assert evicted and with_history > without + 100  # the first message's ~105 tokens came back


@pytest.mark.parametrize("case, status, kind", [
    ("unknown", 404, "unknown_session"), ("not_a_uuid", 404, "unknown_session"),
    ("ended", 409, "ended"), ("duplicate", 409, "duplicate"),
])
def test_refusals_carry_status_and_kind(tmp_path: Path, case: str, status: int, kind: str) -> None:
    async def scenario(engine: Engine) -> EngineError:
        session = await engine.create_session(None, None, None, None)
        target = {"unknown": "00000000-0000-4000-8000-000000000000", "not_a_uuid": "x" * 300}.get(case, session["id"])
        if case == "ended":
            await engine.end_session(session["id"])
        if case == "duplicate":
            await engine.send_message(session["id"], "same")
        with pytest.raises(EngineError) as caught:
            await engine.send_message(target, "same")
        return caught.value

    refusal = _run(tmp_path, scenario)
    assert (refusal.status, refusal.kind) == (status, kind) and "\n" not in refusal.message


def test_deleting_drops_the_live_session_but_keeps_history(tmp_path: Path) -> None:
    async def scenario(engine: Engine) -> tuple[bool, dict[str, Any]]:
        session = await engine.create_session("agent-x", "aria-large", "t", "support")
        await engine.send_message(session["id"], "hello")
        await engine.end_session(session["id"])
        return engine.sessions.get(session["id"]) is None, await engine.get_session(session["id"])

    dropped, stored = _run(tmp_path, scenario)
    assert dropped and stored["status"] == "ended" and stored["message_count"] == 2
    assert (stored["agent_id"], stored["model"], stored["session_type"]) == ("agent-x", "aria-large", "support")
