"""Which Locust stats rows are which chat operation, for the per-operation columns of a ROW.

The chat users name their requests with templates (`POST {api_base}/sessions/{id}/messages`), so an
operation is recognised by method and path shape, whatever the configured base path. WebSocket
answers are `WS <ws-path>`; their `[first token]` and `[connect]` rows are not extra operations.
"""
from __future__ import annotations

OPS = ("sessions_created", "messages", "sessions_deleted", "session_reads", "ws_messages")


def classify(method: str, name: str) -> str | None:
    """The operation a (method, name) stats row counts, or None."""
    if method == "WS":
        return None if name.endswith("]") else "ws_messages"
    path = name.rstrip("/")
    if method == "POST" and path.endswith("/sessions"):
        return "sessions_created"
    if method == "POST" and path.endswith("/messages"):
        return "messages"
    if path.endswith("/sessions/{id}"):
        return {"GET": "session_reads", "DELETE": "sessions_deleted"}.get(method)
    return None


def count_ops(successes_by_key: dict[tuple[str, str], int]) -> dict[str, int]:
    """Cumulative successful operations from {(method, name): successes}."""
    ops = dict.fromkeys(OPS, 0)
    for (method, name), successes in successes_by_key.items():
        op = classify(method, name)
        if op:
            ops[op] += successes
    return ops
