"""Varied chat messages: different text and length every time, like real users.

A real engine rejects an identical message repeated quickly and caches responses by content, so a
soak that sends one fixed string measures a cache, not the engine. Each message combines an opener,
a topic, a random run of words and a per-user counter, with its length drawn from a range.
"""
from __future__ import annotations

import random

_OPENERS = [
    "Can you explain", "Please summarise", "What do you think about", "Give me three ideas for",
    "Help me debug", "Write a short note on", "Compare", "How would you test", "Translate into plain words",
    "List the risks of", "Draft an email about", "Why does",
]
_TOPICS = [
    "our quarterly roadmap", "a memory leak in a web server", "the onboarding flow", "PostgreSQL vacuum",
    "rate limiting at the gateway", "a failing nightly build", "customer churn numbers", "the cache hit ratio",
    "a Python generator", "the incident from last Tuesday", "WebSocket reconnects", "token budgets",
]
_WORDS = (
    "latency throughput session agent model prompt context window token stream retry backoff queue "
    "worker process thread heap arena allocator snapshot trace metric budget deploy rollback feature "
    "flag tenant region replica index query plan schema migration cache eviction policy timeout "
    "deadline request response payload header cookie login audit report chart trend baseline"
).split()


class MessageFactory:
    """Makes messages for one user; `seed` makes a run reproducible when wanted."""

    def __init__(self, words_min: int, words_max: int, seed: int | None = None) -> None:
        self.words_min = words_min
        self.words_max = words_max
        self.random = random.Random(seed)
        self.count = 0

    def next(self) -> str:
        self.count += 1
        rnd = self.random
        words = rnd.randint(self.words_min, self.words_max)
        body = " ".join(rnd.choice(_WORDS) for _ in range(max(0, words - 4)))
        head = f"{rnd.choice(_OPENERS)} {rnd.choice(_TOPICS)}"
        text = f"{head}? {body}".strip() if body else f"{head}?"
        # The counter and a random tag make two messages of one user never identical.
        return f"{text} (#{self.count}-{rnd.randrange(16**6):06x})"
