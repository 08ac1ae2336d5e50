"""The engine's behaviour, free of HTTP: sessions, messages, the gateway, the planted leaks.

`Engine` is what the REST routes and the WebSocket route both call. Storage is the truth for a
session's existence and status (several uvicorn workers may serve one session); the session
manager keeps only what a worker needs in memory (the context window and the duplicate guard)
and reloads it from storage after an eviction or on another worker. Failures that a client can
fix are `EngineError`s carrying an HTTP status and one line naming the fix.
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from typing import Any

from .leaks import PlantedLeaks
from .llm import DEFAULT_MODEL, FakeLLMGateway
from .sessions import AgentPool, AriaRateLimiter, LiveSession, RateLimiter, SessionManager
from .settings import Settings
from .storage import open_storage

DEFAULT_AGENT = "aria-default"


class EngineError(Exception):
    """A request the engine refuses; `kind` lets the WebSocket route decide whether to hang up."""

    def __init__(self, status: int, message: str, kind: str = "bad_request",
                 headers: dict[str, str] | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail  # Aria's own words, sent as "detail" beside "error"
        self.kind = kind
        self.headers = headers or {}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _unknown(session_id: str) -> EngineError:
    return EngineError(404, f"unknown session {session_id[:80]!r}; create one with "
                            "POST /api/engine/chat/sessions", kind="unknown_session",
                       detail=f"Session {session_id[:80]} not found")


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = open_storage(settings.database_url, settings.db_pool_size)
        self.sessions = SessionManager(settings.max_live_sessions, settings.context_messages,
                                       settings.duplicate_window_s, settings.session_idle_s)
        self.gateway = FakeLLMGateway(settings.llm_latency_ms, settings.cache_entries)
        self.agents = AgentPool(settings.score_history)
        self.limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst,
                                   settings.rate_limit_clients)
        self.aria_limiter = AriaRateLimiter(settings.aria_limit_burst_5s, settings.aria_limit_per_minute,
                                            settings.aria_limit_per_hour, settings.rate_limit_clients)
        self.aria = settings.http_semantics == "aria"
        self.streamed = 0  # replies streamed by this worker (picks the ones ws_stall_every stalls)
        self.leaks = PlantedLeaks(settings.leak_sizes())

    async def start(self) -> None:
        await self.storage.open()

    async def stop(self) -> None:
        await self.storage.close()

    def check_rate(self, client: str) -> None:
        """The token bucket per peer IP (rate_limiter=bucket); a no-op otherwise."""
        if self.settings.rate_limiter != "bucket":
            return
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise EngineError(429, f"rate limit exceeded for client {client}: "
                                   f"{self.settings.rate_limit_rps:g} requests/s; retry after {wait:.2f} s "
                                   "or raise DEMO_RATE_LIMIT_RPS", kind="rate_limited",
                              headers={"Retry-After": str(max(1, round(wait + 0.5)))})

    def check_aria_rate(self, client: str) -> None:
        """Aria's windows per client id (rate_limiter=aria): 429, `Retry-After: 60` as Aria sends."""
        refused = self.aria_limiter.refusal(client)
        if refused is None:
            return
        reason, blocked_s = refused
        s = self.settings
        raise EngineError(429, f"rate limit exceeded for client {client[:80]} ({reason}; blocked "
                               f"{blocked_s:.0f} s; limits {s.aria_limit_burst_5s} per 5 s, "
                               f"{s.aria_limit_per_minute}/min, {s.aria_limit_per_hour}/h of "
                               "POST/PUT/PATCH/DELETE): give each simulated user its own "
                               "X-Forwarded-For, or raise DEMO_ARIA_LIMIT_*", kind="rate_limited",
                          headers={"Retry-After": "60"}, detail=f"Rate limit exceeded: {reason}")

    async def create_session(self, agent_id: str | None, model: str | None, title: str | None,
                             session_type: str | None) -> dict[str, Any]:
        row = {"id": str(uuid.uuid4()), "agent_id": agent_id or DEFAULT_AGENT,
               "model": model or DEFAULT_MODEL, "title": title, "status": "active",
               "session_type": session_type or "chat", "created_at": now_iso(), "ended_at": None}
        await self.storage.create_session(row)
        self.sessions.track(row["id"], row["agent_id"], row["model"])
        self.leaks.on_session_created(row["id"])
        return row

    async def _session_row(self, session_id: str) -> dict[str, Any]:
        try:
            uuid.UUID(session_id)  # anything else cannot exist, and never reaches the database
        except ValueError:
            raise _unknown(session_id) from None
        row = await self.storage.get_session(session_id)
        if row is None:
            raise _unknown(session_id)
        return row

    async def require_active(self, session_id: str, ended_words: str = "has ended — create a new session"
                             ) -> dict[str, Any]:
        row = await self._session_row(session_id)
        if row["status"] != "active":
            if self.aria:  # Aria's router answers its SessionError with 404
                raise EngineError(404, f"session {session_id} has ended; create a new session",
                                  kind="ended", detail=f"Session {session_id} {ended_words}")
            raise EngineError(409, f"session {session_id} has ended; create a new session",
                              kind="ended")
        return row

    async def reactivate(self, session_id: str) -> dict[str, Any]:
        """Aria's WebSocket reopens an ended session (StreamManager._validate_session)."""
        row = await self._session_row(session_id)
        if row["status"] != "active":
            await self.storage.reactivate_session(session_id)
            row = {**row, "status": "active", "ended_at": None}
        return row

    async def get_session(self, session_id: str) -> dict[str, Any]:
        row = await (self.require_active(session_id, "has already ended") if self.aria
                     else self._session_row(session_id))
        messages = await self.storage.list_messages(session_id)
        return {**row, "message_count": len(messages), "messages": messages}

    async def end_session(self, session_id: str) -> dict[str, Any]:
        await self._session_row(session_id)
        await self.storage.end_session(session_id, now_iso())
        self.sessions.drop(session_id)
        return {"status": "ended", "session_id": session_id}

    async def _live(self, row: dict[str, Any]) -> LiveSession:
        live = self.sessions.get(row["id"])
        if live is None:  # evicted, or created by another worker: rebuild the context window
            recent = await self.storage.list_messages(row["id"], newest=self.settings.context_messages)
            live = self.sessions.get(row["id"]) or self.sessions.track(
                row["id"], row["agent_id"], row["model"], [m["content"] for m in recent])
        return live

    async def send_message(self, session_id: str, content: str, enable_thinking: bool = False,
                           enable_tools: bool = False) -> dict[str, Any]:
        row = await self.require_active(session_id)
        live = await self._live(row)
        ago = self.sessions.seconds_since_identical(live, content)
        if ago is not None and self.aria:
            window = f"{self.settings.duplicate_window_s:g}"
            raise EngineError(404, f"duplicate message: the same content was sent to this session "
                                   f"{ago:.1f} s ago; vary the content (window {window} s)",
                              kind="duplicate", detail=f"Duplicate message — same content sent within {window}s")
        if ago is not None:
            raise EngineError(409, f"duplicate message: the same content was sent to this session "
                                   f"{ago:.1f} s ago; vary the content (window "
                                   f"{self.settings.duplicate_window_s:g} s)", kind="duplicate")
        try:
            completion = await self.gateway.complete(live.model, list(live.context), content,
                                                     enable_thinking, enable_tools)
            user_row = {"id": str(uuid.uuid4()), "session_id": session_id, "role": "user",
                        "content": content, "created_at": now_iso()}
            reply = {"id": str(uuid.uuid4()), "session_id": session_id, "role": "assistant",
                     "content": completion.text, "input_tokens": completion.input_tokens,
                     "output_tokens": completion.output_tokens, "cost_usd": completion.cost_usd,
                     "latency_ms": completion.latency_ms, "finish_reason": completion.finish_reason,
                     "created_at": now_iso()}
            await self.storage.add_messages([user_row, reply])
        except BaseException:
            self.sessions.forget(live, content)  # a retry of a failed message is not a duplicate
            raise
        live.context.append(content)
        live.context.append(completion.text)
        self.agents.record(live.agent_id, completion.output_tokens / (1.0 + completion.latency_ms))
        self.leaks.on_message(session_id, reply["id"])
        return {"message_id": reply["id"], "session_id": session_id, "role": "assistant",
                "content": completion.text, "thinking": None, "tool_calls": None, "tool_results": None,
                "model": live.model,
                "input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens,
                "total_tokens": completion.total_tokens, "cost_usd": completion.cost_usd,
                "latency_ms": completion.latency_ms, "finish_reason": completion.finish_reason,
                "cached": completion.cached, "created_at": reply["created_at"]}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "storage": self.storage.kind, "leaks": self.leaks.describe(),
                "pid": os.getpid(), "api_key_header": self.settings.api_key_header,
                "live_sessions": len(self.sessions), "cache_entries": len(self.gateway.cache),
                "agents": len(self.agents), "completions": self.gateway.completions,
                "mode": "strict" if self.settings.strict else "demo",
                "ws_frames": self.settings.ws_frames, "rate_limiter": self.settings.rate_limiter,
                "rate_limit_clients": len(self.aria_limiter) + len(self.limiter)}
