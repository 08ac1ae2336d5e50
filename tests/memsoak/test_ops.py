"""Stats rows map to chat operations by method and templated path, whatever the base path."""
from __future__ import annotations

import pytest

from memsoak.ops import classify, count_ops


@pytest.mark.parametrize("method, name, op", [
    ("POST", "/api/engine/chat/sessions", "sessions_created"),
    ("POST", "/v2/chat/sessions", "sessions_created"),
    ("POST", "/api/engine/chat/sessions/{id}/messages", "messages"),
    ("GET", "/api/engine/chat/sessions/{id}", "session_reads"),
    ("DELETE", "/api/engine/chat/sessions/{id}", "sessions_deleted"),
    ("WS", "/ws/chat/{id}", "ws_messages"),
    ("WS", "/ws/chat/{id} [first token]", None),
    ("WS", "/ws/chat/{id} [connect]", None),
    ("GET", "/api/health", None),
])
def test_classify(method: str, name: str, op: str | None) -> None:
    assert classify(method, name) == op


def test_count_ops_sums_successes() -> None:
    ops = count_ops({("POST", "/a/sessions"): 5, ("POST", "/b/sessions"): 2, ("WS", "/ws/{id}"): 3,
                     ("WS", "/ws/{id} [first token]"): 3})
    assert ops == {"sessions_created": 7, "messages": 0, "sessions_deleted": 0, "session_reads": 0,
                   "ws_messages": 3}
