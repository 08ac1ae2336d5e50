"""The streaming user: chat over the WebSocket endpoint, timing first token and whole answer.

websocket-client is pure Python, so under Locust's gevent monkey-patching its blocking socket calls
yield to other users. Each streamed answer is recorded as two Locust requests of type `WS`:
`<ws-path> [first token]` (time to first token) and `<ws-path>` (total time, length in characters).
"""
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import websocket
from locust import task

import memsoak.plugin  # noqa: F401  (registers memsoak's arguments and listeners)
from locustfiles._session import ChatSessionUser

RECV_TIMEOUT_S = 30.0
MAX_FRAMES = 100_000  # bounds one answer's receive loop even if the server never says "done"


def ws_url(host: str, path: str, api_key: str) -> str:
    parts = urlsplit(host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}?{urlencode({'api_key': api_key})}"


def close_quietly(conn: websocket.WebSocket) -> None:
    """Send the close frame and drop the socket, without waiting for the server's answer.

    websocket-client's close() waits up to 3 s for the server's close frame inside a bare `except:`,
    which swallows the GreenletExit Locust uses to stop a user: a user stopped there would never
    die and the test would never end.
    """
    try:
        conn.send_close()
    except Exception:  # the peer may be gone already; the socket is dropped below either way
        pass
    conn.shutdown()


class StreamUser(ChatSessionUser):
    """Create a session over REST, stream messages over one WebSocket, then end or leave it."""

    weight = 1

    @task
    def streamed_session(self) -> None:
        self.require_mix()
        session_id = self.create_session()
        if session_id is None:
            return
        name = self.mix.ws_path
        url = ws_url(self.host or "", self.mix.ws_path.format(id=session_id), self.mix.api_key)
        start = time.perf_counter()
        try:
            headers = [f"{k}: {v}" for k, v in self.headers().items() if k != "Content-Type"]
            conn = websocket.create_connection(url, timeout=RECV_TIMEOUT_S, header=headers)
        except Exception as exc:  # any connect failure is a finding for the report, not a crash
            self.record(f"{name} [connect]", start, 0, self.ws_error(exc))
            return
        try:
            count = self.rnd.randint(self.mix.messages_min, self.mix.messages_max)
            for number in range(count):
                if number:
                    self.think()
                if not self.stream_one(conn, name):
                    break
        finally:
            close_quietly(conn)
        self.finish_session(session_id)

    def stream_one(self, conn: websocket.WebSocket, name: str) -> bool:
        """Send one message and read its streamed answer; False when the socket is unusable."""
        start = time.perf_counter()
        first_token = False
        length = 0
        try:
            conn.send(json.dumps({"type": "message", "content": self.messages.next()}))
            for _ in range(MAX_FRAMES):
                frame = json.loads(conn.recv())
                kind = frame.get("type")
                if kind == "token":
                    if not first_token:
                        first_token = True
                        self.record(f"{name} [first token]", start, 0, None)
                    length += len(str(frame.get("content", "")))
                elif kind == "done":
                    self.record(name, start, length, None)
                    return True
                elif kind == "error":
                    detail = frame.get("status") or frame.get("code") or frame.get("detail") or "error"
                    self.record(name, start, length, Exception(f"WS error {detail}"))
                    return True
            self.record(name, start, length, Exception(f"WS no 'done' after {MAX_FRAMES} frames"))
            return False
        except Exception as exc:
            self.record(name, start, length, self.ws_error(exc))
            return False

    @staticmethod
    def ws_error(exc: BaseException) -> Exception:
        status = getattr(exc, "status_code", None)
        if status:
            return Exception(f"WS HTTP {status}")
        return Exception(f"WS {type(exc).__name__}")

    def record(self, name: str, start: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - start) * 1000,
            response_length=length, exception=error, context={})

