"""The engine's in-memory state, every piece of it bounded: live sessions, agents, clients.

- `SessionManager`: an LRU of live sessions, also expired after `idle_s` without use (evicted or
  expired ones are reloaded from storage on their next message), each with a sliding context
  window and a memory of recent message digests that rejects an identical message repeated
  within the duplicate window.
- `AgentPool`: agents by id (LRU), each keeping its last N reply scores.
- `RateLimiter`: a token bucket per client (LRU of clients).
- `AriaRateLimiter`: Aria's sliding windows per client (burst / minute / hour), LRU of clients.
These are what make a healthy engine's memory move: they grow, then plateau at their bounds.
"""
from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class LiveSession:
    id: str
    agent_id: str
    model: str
    context: deque[str]
    recent: OrderedDict[str, float] = field(default_factory=OrderedDict)  # digest -> monotonic time
    last_used: float = field(default_factory=time.monotonic)


class SessionManager:
    def __init__(self, max_live: int, context_messages: int, duplicate_window_s: float,
                 idle_s: float = 600.0) -> None:
        self.max_live = max_live
        self.idle_s = idle_s
        self.context_messages = context_messages
        self.duplicate_window_s = duplicate_window_s
        self._live: OrderedDict[str, LiveSession] = OrderedDict()

    def track(self, session_id: str, agent_id: str, model: str, history: Sequence[str] = (),
              now: float | None = None) -> LiveSession:
        now = time.monotonic() if now is None else now
        live = LiveSession(session_id, agent_id, model, deque(history, maxlen=self.context_messages),
                           last_used=now)
        self._live[session_id] = live
        self._live.move_to_end(session_id)
        self._expire(now)
        return live

    def get(self, session_id: str, now: float | None = None) -> LiveSession | None:
        now = time.monotonic() if now is None else now
        self._expire(now)
        live = self._live.get(session_id)
        if live is not None:
            live.last_used = now
            self._live.move_to_end(session_id)
        return live

    def _expire(self, now: float) -> None:
        # LRU order is last-use order, so the idle ones are all at the front.
        while self._live and (len(self._live) > self.max_live
                              or next(iter(self._live.values())).last_used < now - self.idle_s):
            self._live.popitem(last=False)

    def drop(self, session_id: str) -> None:
        self._live.pop(session_id, None)

    def seconds_since_identical(self, live: LiveSession, content: str, now: float | None = None) -> float | None:
        """Record `content`; return how long ago the same content came, if within the window."""
        now = time.monotonic() if now is None else now
        while live.recent and next(iter(live.recent.values())) < now - self.duplicate_window_s:
            live.recent.popitem(last=False)
        digest = hashlib.blake2b(content.encode("utf-8"), digest_size=16).hexdigest()
        seen = live.recent.get(digest)
        if seen is not None:
            return now - seen
        live.recent[digest] = now
        while len(live.recent) > 256:  # bounded even under a flood within one window
            live.recent.popitem(last=False)
        return None

    def forget(self, live: LiveSession, content: str) -> None:
        """Undo the duplicate record of a message that then failed, so a retry is not rejected."""
        live.recent.pop(hashlib.blake2b(content.encode("utf-8"), digest_size=16).hexdigest(), None)

    def __len__(self) -> int:
        return len(self._live)


class AgentPool:
    def __init__(self, history: int, max_agents: int = 64) -> None:
        self.history = history
        self.max_agents = max_agents
        self._scores: OrderedDict[str, deque[float]] = OrderedDict()

    def record(self, agent_id: str, score: float) -> None:
        scores = self._scores.get(agent_id)
        if scores is None:
            scores = self._scores[agent_id] = deque(maxlen=self.history)
            while len(self._scores) > self.max_agents:
                self._scores.popitem(last=False)
        self._scores.move_to_end(agent_id)
        scores.append(score)

    def __len__(self) -> int:
        return len(self._scores)


class RateLimiter:
    """Token bucket per client: `rate` tokens per second up to `burst`; rate 0 means no limit."""

    def __init__(self, rate: float, burst: int, max_clients: int = 4096) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, last time

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """Take one token for `client`; None when allowed, else seconds until one is free."""
        if self.rate <= 0:
            return None
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class AriaRateLimiter:
    """Aria's per-client limiter (src/api/security_middleware.py `RateLimiter`), bounded in clients.

    Each client keeps the times of its allowed requests of the last hour. A request is refused
    when the client is blocked, or when it already has `burst` requests in the last 5 s (then
    blocked 15 s), `per_minute` in the last 60 s (blocked 30 s) or `per_hour` in the last hour
    (blocked 300 s); refused requests are not recorded. Unlike Aria, which keeps every client id
    it ever saw, at most `max_clients` are remembered (least recently seen forgotten first).
    """

    BLOCK_S = {"burst_exceeded": 15.0, "rpm_exceeded": 30.0, "rph_exceeded": 300.0}

    def __init__(self, burst: int, per_minute: int, per_hour: int, max_clients: int = 4096) -> None:
        self.burst, self.per_minute, self.per_hour = burst, per_minute, per_hour
        self.max_clients = max_clients
        self._requests: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def refusal(self, client: str, now: float | None = None) -> tuple[str, float] | None:
        """Count one request of `client`; None when allowed, else (Aria's reason, seconds blocked)."""
        now = time.monotonic() if now is None else now
        until = self._blocked.get(client)
        if until is not None:
            if now < until:
                return "rate_limited", until - now
            del self._blocked[client]
        times = self._requests.pop(client, None)
        if times is None:
            times = deque(maxlen=self.per_hour)
        self._requests[client] = times  # most recently seen last
        while times and times[0] <= now - 3600.0:
            times.popleft()
        reason = None
        if self._count_since(times, now - 5.0) >= self.burst:
            reason = "burst_exceeded"
        elif self._count_since(times, now - 60.0) >= self.per_minute:
            reason = "rpm_exceeded"
        elif len(times) >= self.per_hour:
            reason = "rph_exceeded"
        if reason is None:
            times.append(now)
        else:
            self._blocked[client] = now + self.BLOCK_S[reason]
        while len(self._requests) > self.max_clients:
            forgotten, _ = self._requests.popitem(last=False)
            self._blocked.pop(forgotten, None)
        return None if reason is None else (reason, self.BLOCK_S[reason])

    @staticmethod
    def _count_since(times: deque[float], since: float) -> int:
        count = 0
        for stamp in reversed(times):
            if stamp <= since:
                break
            count += 1
        return count

    def __len__(self) -> int:
        return len(self._requests)
