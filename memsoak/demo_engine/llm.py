"""A fake LLM gateway: latency, token counts and cost like a real one, with no network.

The reply is derived from a hash of the prompt, so it is deterministic and costs no CPU worth
measuring; the latency is an `asyncio.sleep`, so the engine holds requests open the way it does
while waiting on a provider. A bounded LRU response cache keyed by content sits in front, as in
Aria: it grows while it fills and then plateaus, which a good leak verdict must not call a leak.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

# USD per 1,000 tokens (input, output); unknown models are priced like the default one.
PRICES: dict[str, tuple[float, float]] = {
    "aria-small": (0.00015, 0.0006),
    "aria-large": (0.0025, 0.01),
}
DEFAULT_MODEL = "aria-small"
_sleep = asyncio.sleep  # the provider's wait; a module attribute so tests can count the waits
_WORDS = ("the engine answers with care and the context window slides forward while agents score "
          "each reply against memory budgets latency tokens and cost so that a soak test can see "
          "whether anything grows without bound over hours of steady realistic traffic").split()


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    finish_reason: str
    cached: bool

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def count_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # the usual ~4 characters per token


class ResponseCache:
    """LRU of reply texts keyed by a digest of the prompt; at most `max_entries` entries."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        text = self._entries.get(key)
        if text is not None:
            self._entries.move_to_end(key)
        return text

    def put(self, key: str, text: str) -> None:
        self._entries[key] = text
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class FakeLLMGateway:
    def __init__(self, latency_ms: float, cache_entries: int) -> None:
        self.latency_ms = latency_ms
        self.cache = ResponseCache(cache_entries)
        self.completions = 0
        self.cache_hits = 0

    async def complete(self, model: str, context: list[str], content: str,
                       enable_thinking: bool = False, enable_tools: bool = False) -> Completion:
        started = time.perf_counter()
        digest = hashlib.sha256(f"{model}\0{enable_thinking}\0{enable_tools}\0{content}".encode()).hexdigest()
        text = self.cache.get(digest)
        cached = text is not None
        if text is None:
            await _sleep(self.latency_ms / 1000.0)
            text = _reply(digest, content, enable_thinking, enable_tools)
            self.cache.put(digest, text)
        else:
            self.cache_hits += 1
        self.completions += 1
        input_tokens = sum(count_tokens(part) for part in context) + count_tokens(content)
        output_tokens = len(text.split(" "))
        price_in, price_out = PRICES.get(model, PRICES[DEFAULT_MODEL])
        cost = 0.0 if cached else (input_tokens * price_in + output_tokens * price_out) / 1000.0
        return Completion(text=text, input_tokens=input_tokens, output_tokens=output_tokens,
                          cost_usd=round(cost, 8), latency_ms=round((time.perf_counter() - started) * 1000, 3),
                          finish_reason="tool_calls" if enable_tools else "stop", cached=cached)


def _reply(digest: str, content: str, enable_thinking: bool, enable_tools: bool) -> str:
    seed = int(digest[:8], 16)
    length = 12 + seed % 36 + (24 if enable_thinking else 0)
    words = [_WORDS[(seed >> (i % 24) ^ i * 7) % len(_WORDS)] for i in range(length)]
    echo = " ".join(content.split()[:6])[:80]  # a long prompt must not make a long reply
    prefix = "Thinking done. " if enable_thinking else ""
    tools = " [tool: search]" if enable_tools else ""
    return f"{prefix}You said: {echo}. " + " ".join(words) + "." + tools
