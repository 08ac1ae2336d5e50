"""WebSocket chat streaming at /ws/chat/{id}?api_key=KEY, in Aria's real frames or the legacy ones.

In: `{"type": "message", "content": ..., "enable_thinking"?, "enable_tools"?}` text frames (and,
with aria frames, `{"type": "ping"}`, answered `{"type": "pong"}`).

ws_frames=aria, what Aria's StreamManager (aria_engine/streaming.py) sends per message:
  stream_start, iteration_start, [thinking...], [iteration_end, tool_call, tool_result,
  iteration_start], content..., iteration_end, stream_end {message_id, finish_reason, model,
  tokens_input, tokens_output, cost}; a refused message gets `{"type": "error", "message"}` (after
  stream_start when the engine refuses it, e.g. a duplicate) and no stream_end.
ws_frames=legacy, what Aria's docstrings document: `{"type": "token", "content"}`..., then
  `{"type": "done", <the REST reply fields>}`; a refusal is `{"type": "error", "status", "error"}`.

Either way `{"type": "pong"}` comes every ws_keepalive_s seconds while the socket is open
(Aria: 30 s), also in the middle of a reply. A wrong key is refused at the handshake
(ws_auth_reject=handshake: Aria closes with 4401 before accepting, which uvicorn turns into an
HTTP 403 answer to the upgrade) or after accepting (close: an error frame, then close code
4401). An unknown session is refused like Aria (handshake) under http_semantics=aria, where an
ended session is reopened; otherwise it gets an error frame and close 4404 (ended: 4409).
A reply chosen by ws_stall_every, or whose message contains "[never-end]", never ends: it stops
after two content frames and only keepalives follow, until the client leaves or ws_stall_max_s.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from .engine import Engine, EngineError
from .schemas import MessageIn, first_error
from .settings import Settings
from .storage import StorageUnavailable

NEVER_END_MARKER = "[never-end]"
STALL_AFTER_FRAMES = 2  # content frames a never-ending reply sends before it goes quiet


class Socket:
    """One accepted WebSocket; sends from the reply and the keepalive task never interleave."""

    def __init__(self, websocket: WebSocket, aria: bool) -> None:
        self.websocket = websocket
        self.aria = aria
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._lock:
            await self.websocket.send_text(json.dumps(frame))

    async def error(self, status: int, message: str, aria_message: str | None = None) -> None:
        if self.aria:
            await self.send({"type": "error", "message": aria_message or message})
        else:
            await self.send({"type": "error", "status": status, "error": message})

    async def keepalive(self, interval_s: float) -> None:
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self.send({"type": "pong"})
        except Exception:  # the socket is gone: the receive loop will see it and end
            return


def _parse_legacy(text: str | None) -> tuple[dict[str, Any] | None, str]:
    """The message frame as a dict, or None and the one-line reason."""
    if text is None:
        return None, "send JSON text frames, not binary"
    try:
        frame = json.loads(text)
    except ValueError:
        return None, "frame is not valid JSON; send {\"type\": \"message\", \"content\": \"...\"}"
    if not isinstance(frame, dict) or frame.get("type") != "message":
        return None, "frame must be a JSON object with \"type\": \"message\""
    return _validated(frame)


def _parse_aria(text: str | None) -> tuple[dict[str, Any] | str | None, str]:
    """Like Aria: "ping" for a ping, the message as a dict, or None and Aria's error words."""
    if text is None:
        return None, "Binary frames are not supported; send JSON text"
    try:
        frame = json.loads(text)
    except ValueError:
        return None, "Invalid JSON"
    if not isinstance(frame, dict):
        return None, "Invalid JSON: send a JSON object"
    kind = frame.get("type", "")
    if kind == "ping":
        return "ping", ""
    if kind != "message":
        return None, f"Unknown message type: {kind}"
    if not isinstance(frame.get("content"), str) or not frame["content"].strip():
        return None, "Empty message content"
    return _validated({"enable_tools": True, **frame})  # Aria's WebSocket default: tools on


def _validated(frame: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    try:
        parsed = MessageIn.model_validate({k: v for k, v in frame.items() if k != "type"})
    except ValidationError as error:
        return None, first_error(list(error.errors()))[1]
    return parsed.model_dump(include={"content", "enable_thinking", "enable_tools"}), ""


async def _refuse_before_accept(websocket: WebSocket, code: int) -> None:
    """Aria's refusal: close without accepting (the client sees HTTP 403 from uvicorn)."""
    await websocket.close(code=code)


async def serve_chat_stream(websocket: WebSocket, session_id: str, engine: Engine, settings: Settings) -> None:
    aria = settings.ws_frames == "aria"
    sent_key = websocket.query_params.get("api_key", "")
    if not secrets.compare_digest(sent_key.encode("utf-8", "replace"), settings.api_key.encode("utf-8")):
        if settings.ws_auth_reject == "handshake":
            return await _refuse_before_accept(websocket, 4401)
        await websocket.accept()
        socket = Socket(websocket, aria)
        await socket.error(401, "missing or wrong API key: pass it as ?api_key=KEY",
                           "Unauthorized — invalid or missing API key")
        return await websocket.close(code=4401)
    try:
        if engine.aria:
            await engine.reactivate(session_id)  # Aria reopens an ended session on connect
        else:
            await engine.require_active(session_id)
    except EngineError as refusal:
        if engine.aria:
            return await _refuse_before_accept(websocket, 1000)
        await websocket.accept()
        await Socket(websocket, aria).error(refusal.status, refusal.message, refusal.detail)
        return await websocket.close(code=4000 + refusal.status)
    except StorageUnavailable:
        await websocket.accept()  # like Aria: accept anyway, the messages will fail one by one
    else:
        await websocket.accept()
    socket = Socket(websocket, aria)
    keepalive = (asyncio.create_task(socket.keepalive(settings.ws_keepalive_s))
                 if settings.ws_keepalive_s > 0 else None)
    try:
        await _serve_messages(socket, session_id, engine, settings)
    except WebSocketDisconnect:
        return
    finally:
        if keepalive is not None:
            keepalive.cancel()


async def _serve_messages(socket: Socket, session_id: str, engine: Engine, settings: Settings) -> None:
    websocket = socket.websocket
    client = websocket.client.host if websocket.client else "unknown"
    while True:  # one iteration per client frame; ends when the client disconnects
        event = await websocket.receive()
        if event["type"] == "websocket.disconnect":
            return
        if socket.aria:
            frame, problem = _parse_aria(event.get("text"))
            if frame == "ping":
                await socket.send({"type": "pong"})
                continue
        else:
            frame, problem = _parse_legacy(event.get("text"))
        if not isinstance(frame, dict):
            await socket.error(400, problem)
            continue
        if socket.aria:
            await socket.send({"type": "stream_start"})  # Aria sends it before anything can fail
        try:
            engine.check_rate(client)  # the token bucket; Aria does not rate-limit its WebSocket
            if engine.aria:
                await engine.reactivate(session_id)
            reply = await engine.send_message(session_id, **frame)
        except EngineError as refusal:
            await socket.error(refusal.status, refusal.message, refusal.detail)
            if not engine.aria and refusal.kind in ("ended", "unknown_session"):
                return await websocket.close(code=4000 + refusal.status)
            continue
        except StorageUnavailable as error:
            await socket.error(503, f"database unavailable ({error}); retry later")
            continue
        engine.streamed += 1
        stall = NEVER_END_MARKER in frame["content"] or (
            settings.ws_stall_every > 0 and engine.streamed % settings.ws_stall_every == 0)
        if socket.aria:
            finished = await _aria_reply(socket, frame, reply, settings, stall)
        else:
            finished = await _legacy_reply(socket, reply, settings, stall)
        if not finished:
            return


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + words[-1:]


async def _stream_content(socket: Socket, kind: str, text: str, settings: Settings, stall: bool) -> bool:
    """Content frames of `text`; False when the reply stalls (and the connection ends)."""
    for number, token in enumerate(_tokens(text)):
        if stall and number == STALL_AFTER_FRAMES:
            return await _stall(socket, settings)
        if number and settings.ws_token_delay_ms > 0:
            await asyncio.sleep(settings.ws_token_delay_ms / 1000.0)
        await socket.send({"type": kind, "content": token})
    if stall:
        return await _stall(socket, settings)
    return True


async def _stall(socket: Socket, settings: Settings) -> bool:
    """A reply that never ends: only keepalives until the client leaves (or ws_stall_max_s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.ws_stall_max_s
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(socket.websocket.receive(), remaining)
        except TimeoutError:
            break
        if event["type"] == "websocket.disconnect":
            return False
        # a frame sent while the reply is still "running" is dropped, as it never ends
    await socket.websocket.close(code=1011, reason="reply abandoned after ws_stall_max_s")
    return False


async def _legacy_reply(socket: Socket, reply: dict[str, Any], settings: Settings, stall: bool) -> bool:
    if not await _stream_content(socket, "token", reply["content"], settings, stall):
        return False
    await socket.send({"type": "done", **reply})
    return True


async def _aria_reply(socket: Socket, frame: dict[str, Any], reply: dict[str, Any], settings: Settings,
                      stall: bool) -> bool:
    iteration = 1
    await socket.send({"type": "iteration_start", "iteration": iteration})
    if frame["enable_thinking"]:
        thought = f"Let me consider: {' '.join(frame['content'].split()[:8])[:80]}"
        for token in _tokens(thought):
            await socket.send({"type": "thinking", "content": token})
    if frame["enable_tools"]:  # one tool round, as Aria runs when the model asks for a tool
        await socket.send({"type": "iteration_end", "iteration": iteration, "finish_reason": "tool_calls"})
        call_id = "call_" + uuid.uuid4().hex[:16]
        query = " ".join(frame["content"].split()[:6])[:80]
        await socket.send({"type": "tool_call", "name": "search", "id": call_id,
                           "arguments": json.dumps({"q": query})})
        await socket.send({"type": "tool_result", "name": "search", "id": call_id, "success": True,
                           "content": json.dumps({"results": [f"a note about {query}"]})})
        iteration += 1
        await socket.send({"type": "iteration_start", "iteration": iteration})
    if not await _stream_content(socket, "content", reply["content"], settings, stall):
        return False
    await socket.send({"type": "iteration_end", "iteration": iteration, "finish_reason": "stop"})
    await socket.send({"type": "stream_end", "message_id": reply["message_id"], "finish_reason": "stop",
                       "model": reply["model"], "tokens_input": reply["input_tokens"],
                       "tokens_output": reply["output_tokens"], "cost": reply["cost_usd"]})
    return True
