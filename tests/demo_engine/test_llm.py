"""The fake LLM gateway: deterministic replies, consistent tokens and cost, a bounded LRU cache."""
from __future__ import annotations

import asyncio

from memsoak.demo_engine import llm
from memsoak.demo_engine.llm import FakeLLMGateway, ResponseCache, count_tokens


def test_response_cache_is_a_bounded_lru() -> None:
    cache = ResponseCache(max_entries=2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C")
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == ("A", None, "C", 2)


def test_replies_are_deterministic_and_tokens_add_up() -> None:
    async def scenario():  # type: ignore[no-untyped-def]
        gateway = FakeLLMGateway(latency_ms=0, cache_entries=10)
        first = await gateway.complete("aria-small", [], "hello world")
        other = await FakeLLMGateway(0, 10).complete("aria-small", [], "hello world")
        with_context = await gateway.complete("aria-small", ["earlier " * 40], "hello again")
        return first, other, with_context

    first, other, with_context = asyncio.run(scenario())
    assert first.text == other.text and not first.cached
    assert first.input_tokens == count_tokens("hello world")
    assert first.output_tokens == len(first.text.split(" ")) and first.total_tokens == first.input_tokens + first.output_tokens
    assert first.cost_usd > 0 and first.finish_reason == "stop"
    assert with_context.input_tokens > count_tokens("hello again")


def test_a_cache_hit_is_free_and_skips_the_latency(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(llm, "_sleep", fake_sleep)

    async def scenario():  # type: ignore[no-untyped-def]
        gateway = FakeLLMGateway(latency_ms=200, cache_entries=10)
        miss = await gateway.complete("aria-large", [], "same prompt")
        hit = await gateway.complete("aria-large", [], "same prompt")
        return gateway, miss, hit

    gateway, miss, hit = asyncio.run(scenario())
    assert not miss.cached and hit.cached and hit.text == miss.text
    assert hit.cost_usd == 0.0 and miss.cost_usd > 0
    assert waits == [0.2]  # the provider latency was paid on the miss only
    assert (gateway.completions, gateway.cache_hits, len(gateway.cache)) == (2, 1, 1)


def test_long_prompts_do_not_make_long_replies() -> None:
    reply = asyncio.run(FakeLLMGateway(0, 1).complete("m", [], "x" * 100_000))
    assert len(reply.text) < 1000
