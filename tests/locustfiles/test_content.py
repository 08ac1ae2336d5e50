"""Chat messages vary in text and length, and one user never repeats a message."""
from __future__ import annotations

from memsoak.locustfiles._content import MessageFactory


def test_messages_vary_in_text_and_length() -> None:
    factory = MessageFactory(words_min=3, words_max=60, seed=7)
    messages = [factory.next() for _ in range(500)]
    assert len(set(messages)) == len(messages)
    lengths = [len(m.split()) for m in messages]
    assert min(lengths) < 10 and max(lengths) > 40
    assert len({m.split("?")[0] for m in messages}) > 50  # many different openings, not one template


def test_word_range_is_respected() -> None:
    factory = MessageFactory(words_min=5, words_max=5, seed=1)
    for _ in range(50):
        # opener + topic + body + the unique tag; the body is words_min - 4 words
        assert len(factory.next().split()) <= 5 + 12
