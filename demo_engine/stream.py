"""WebSocket chat streaming at /ws/chat/{id}?api_key=KEY, the way Aria streams replies.

In: `{"type": "message", "content": ..., "enable_thinking"?, "enable_tools"?}` text frames.
Out: `{"type": "token", "content"}` per token, then `{"type": "done", ...}` with the same fields
as the REST reply. A refused message gets `{"type": "error", "status", "error"}` and the
connection stays open, except when it cannot go on: wrong key (close 4401), unknown session
(4404), ended session (4409). Close codes are 4000 + the HTTP status of the same refusal.
"""
from __future__ import annotations

import json
import secrets

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from demo_engine.engine import Engine, EngineError
from demo_engine.schemas import MessageIn, first_error
from demo_engine.settings import Settings
from demo_engine.storage import StorageUnavailable


async def _refuse(websocket: WebSocket, status: int, message: str, close: bool) -> None:
    await websocket.send_json({"type": "error", "status": status, "error": message})
    if close:
        await websocket.close(code=4000 + status)


def _parse(text: str | None) -> tuple[dict[str, object] | None, str]:
    """The message frame as a dict, or None and the one-line reason."""
    if text is None:
        return None, "send JSON text frames, not binary"
    try:
        frame = json.loads(text)
    except ValueError:
        return None, "frame is not valid JSON; send {\"type\": \"message\", \"content\": \"...\"}"
    if not isinstance(frame, dict) or frame.get("type") != "message":
        return None, "frame must be a JSON object with \"type\": \"message\""
    try:
        parsed = MessageIn.model_validate({k: v for k, v in frame.items() if k != "type"})
    except ValidationError as error:
        return None, first_error(list(error.errors()))[1]
    return parsed.model_dump(include={"content", "enable_thinking", "enable_tools"}), ""


async def serve_chat_stream(websocket: WebSocket, session_id: str, engine: Engine, settings: Settings) -> None:
    await websocket.accept()
    try:
        sent_key = websocket.query_params.get("api_key", "")
        if not secrets.compare_digest(sent_key.encode("utf-8", "replace"), settings.api_key.encode("utf-8")):
            return await _refuse(websocket, 401, "missing or wrong API key: pass it as ?api_key=KEY", True)
        try:
            await engine.require_active(session_id)
        except EngineError as refusal:
            return await _refuse(websocket, refusal.status, refusal.message, True)
        client = websocket.client.host if websocket.client else "unknown"
        while True:  # one iteration per client frame; ends when the client disconnects
            event = await websocket.receive()
            if event["type"] == "websocket.disconnect":
                return
            frame, problem = _parse(event.get("text"))
            if frame is None:
                await _refuse(websocket, 400, problem, False)
                continue
            try:
                engine.check_rate(client)
                reply = await engine.send_message(session_id, **frame)  # type: ignore[arg-type]
            except EngineError as refusal:
                await _refuse(websocket, refusal.status, refusal.message, refusal.kind in ("ended", "unknown_session"))
                if refusal.kind in ("ended", "unknown_session"):
                    return
                continue
            except StorageUnavailable as error:
                await _refuse(websocket, 503, f"database unavailable ({error}); retry later", False)
                continue
            for token in _tokens(reply["content"]):
                await websocket.send_json({"type": "token", "content": token})
            await websocket.send_json({"type": "done", **reply})
    except WebSocketDisconnect:
        return


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + words[-1:]
