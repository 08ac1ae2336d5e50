"""The streaming user: chat over the WebSocket endpoint, timing first token and whole answer.

websocket-client is pure Python, so under Locust's gevent monkey-patching its blocking socket calls
yield to other users. Each streamed answer is recorded as two Locust requests of type `WS`:
`<ws-path> [first token]` (time to the first frame that carries text) and `<ws-path>` (total time,
length in characters).

Which frame types carry text, end a reply, are errors or are ignored are settings (`--ws-*-frames`);
the defaults cover the real Aria engine (`stream_start`, `content`, `stream_end`, keepalive `pong`,
...) and its documented protocol (`token`, `done`). A frame type in no list is logged once and
skipped. Each reply has one deadline (`--ws-reply-timeout-s`) counted from sending the message:
frames that carry no text (a keepalive every 30 s) do not extend it, so a reply that never ends is a
failure named by its cause instead of a user that waits forever.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import websocket
from locust import task

import memsoak.plugin  # noqa: F401  (registers memsoak's arguments and listeners)
from memsoak.locustfiles._session import ChatSessionUser

log = logging.getLogger("memsoak.users")
CONNECT_TIMEOUT_S = 30.0
MAX_FRAMES = 100_000  # bounds one answer's receive loop whatever the server sends
DRAIN_S = 0.05        # before a message: read what is left of the previous reply (an end after an error)
_unknown_logged: set[str] = set()


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


def close_status(frame: Any) -> str:
    """'4401 Unauthorized' from a close frame's payload (code, then the UTF-8 reason)."""
    data = bytes(getattr(frame, "data", b"") or b"")
    if len(data) < 2:
        return "without a code"
    reason = data[2:].decode("utf-8", "replace").strip()
    return f"{int.from_bytes(data[:2], 'big')}" + (f" {reason[:60]}" if reason else "")


class ReplyFailed(Exception):
    """One streamed reply failed; the message is its cause as the report shows it."""


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
            conn = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S, header=headers)
        except Exception as exc:  # any connect failure is a finding for the report, not a crash
            self.record(f"{name} [connect]", start, 0, self.ws_error(exc))
            return
        try:
            count = self.rnd.randint(self.mix.messages_min, self.mix.messages_max)
            for number in range(count):
                if number:
                    self.think()
                    self.drain(conn)
                if not self.stream_one(conn, name):
                    break
        finally:
            close_quietly(conn)
        self.finish_session(session_id)

    def stream_one(self, conn: websocket.WebSocket, name: str) -> bool:
        """Send one message and read its streamed answer; False when the socket is unusable."""
        start = time.perf_counter()
        deadline = start + self.mix.ws_reply_timeout_s
        first_token = False
        length = texts = others = 0
        try:
            conn.send(json.dumps({"type": "message", "content": self.messages.next()}))
            for _ in range(MAX_FRAMES):
                frame = self.next_frame(conn, deadline, texts, others)
                kind = frame.get("type")
                if kind in self.mix.ws_token_frames:
                    if not first_token:
                        first_token = True
                        self.record(f"{name} [first token]", start, 0, None)
                    texts += 1
                    length += len(str(frame.get("content", "")))
                elif kind in self.mix.ws_end_frames:
                    self.record(name, start, length, None)
                    return True
                elif kind in self.mix.ws_error_frames:
                    detail = (frame.get("message") or frame.get("detail") or frame.get("status")
                              or frame.get("code") or "no detail")
                    self.record(name, start, length, ReplyFailed(f"WS error frame: {str(detail)[:80]}"))
                    return True
                else:
                    others += 1
                    if kind not in self.mix.ws_ignore_frames and kind not in _unknown_logged:
                        _unknown_logged.add(str(kind))
                        log.warning("memsoak: WebSocket frame type %r is in no --ws-*-frames list: skipped "
                                    "(add it to --ws-ignore-frames, or to --ws-token-frames if it carries "
                                    "answer text)", kind)
            raise ReplyFailed(f"WS reply never ended: {MAX_FRAMES} frames without an end frame")
        except ReplyFailed as exc:
            self.record(name, start, length, exc)
            return False
        except Exception as exc:
            self.record(name, start, length, self.ws_error(exc))
            return False

    def next_frame(self, conn: websocket.WebSocket, deadline: float, texts: int, others: int) -> dict:
        """The next JSON frame before the reply's deadline; ReplyFailed names why there is none."""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise ReplyFailed(self.never_ended(texts, others))
            conn.settimeout(remaining)
            try:
                opcode, frame = conn.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                raise ReplyFailed(self.never_ended(texts, others)) from None
            except websocket.WebSocketConnectionClosedException:
                raise ReplyFailed("WS connection closed before the reply ended") from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ReplyFailed(f"WS closed {close_status(frame)} before the reply ended")
            if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                continue  # protocol-level ping/pong: the library answers pings itself
            try:
                data = json.loads(frame.data if isinstance(frame.data, (str, bytes)) else bytes(frame.data))
            except ValueError:
                raise ReplyFailed("WS frame is not JSON") from None
            if not isinstance(data, dict):
                raise ReplyFailed("WS frame is not a JSON object")
            return data

    def never_ended(self, texts: int, others: int) -> str:
        ends = "/".join(sorted(self.mix.ws_end_frames))
        if texts:
            cause = "text stopped coming"
        elif others:
            cause = "only frames without text (keepalives?)"
        else:
            cause = "no frame at all"
        return f"WS reply never ended: no {ends} within {self.mix.ws_reply_timeout_s:g} s ({cause})"

    def drain(self, conn: websocket.WebSocket) -> None:
        """Drop what is left of the previous reply (the real engine may end a reply after an error)."""
        try:
            for _ in range(100):
                conn.settimeout(DRAIN_S)
                try:
                    opcode, _frame = conn.recv_data_frame(True)
                except Exception:  # nothing waiting (timeout), or a closed socket the next send reports
                    return
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return
        finally:
            try:
                conn.settimeout(CONNECT_TIMEOUT_S)  # the next send must not inherit the drain's 50 ms
            except OSError:  # a socket closed meanwhile: the next send reports it
                pass

    @staticmethod
    def ws_error(exc: BaseException) -> Exception:
        status = getattr(exc, "status_code", None)
        if status:
            return Exception(f"WS HTTP {status}")
        return Exception(f"WS {type(exc).__name__}")

    def record(self, name: str, start: float, length: int, error: Exception | None) -> None:
        if error is not None and type(error) is not Exception:
            error = Exception(str(error))  # the report shows a plain Exception's text as the error
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.perf_counter() - start) * 1000,
            response_length=length, exception=error, context={})
