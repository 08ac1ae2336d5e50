"""An engine shape the verdict was not tuned on: plain Starlette (not FastAPI), no database, state in
an OrderedDict, and leak kinds the demo engine does not plant.

It serves Aria's chat paths as the locustfiles drive them (POST/GET/DELETE
/api/engine/chat/sessions[/{id}], POST .../{id}/messages, WebSocket /ws/chat/{id} streaming
token frames then `done`), bounds what a clean engine keeps (at most MAX_SESSIONS sessions, the
oldest evicted; 20 messages of history each), and plants one leak by name:

  exc_keep          every message parses a malformed tool call and keeps the exception in an
                    error log: its traceback holds the handler's frame and its locals (the message,
                    a 2 KB scratch buffer)
  closure_registry  every session registers an event listener closure (capturing a 4 KB buffer) in
                    a module-level registry that ending the session never unregisters

    python bench/engines/indie_engine.py --port 8000 [--leak exc_keep|closure_registry]

A check on an engine the verdict was not built against (issue 9), soaked as a user would soak
their own engine:

    memsoak soak --host http://127.0.0.1:8000 --duration 5m --users 20 --spawn-rate 10 \
        --think-min-s 0.05 --think-max-s 0.2 -- python bench/engines/indie_engine.py --port 8000 --leak exc_keep
"""
from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections import OrderedDict, deque
from typing import Any, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_SESSIONS = 200
HISTORY = 20
LEAKS = ("exc_keep", "closure_registry")

SESSIONS: OrderedDict[str, deque[dict[str, str]]] = OrderedDict()
ERROR_LOG: list[BaseException] = []                       # exc_keep
LISTENERS: list[Callable[[str], int]] = []                # closure_registry
PLANTED: set[str] = set()


def reply_to(text: str) -> str:
    words = text.split() or ["…"]
    return " ".join(reversed(words[-12:]))


def parse_tool_call(text: str) -> Any:
    scratch = bytearray(2048)   # a buffer the parser works in; a kept traceback keeps it alive
    head = text.encode()[:16]
    scratch[:len(head)] = head
    return json.loads("{tool: " + text[:40])   # malformed on purpose: raises


def handle_message(session_id: str, text: str) -> str:
    history = SESSIONS.get(session_id)
    if history is None:
        raise KeyError(session_id)
    if "exc_keep" in PLANTED:
        try:
            parse_tool_call(text)
        except ValueError as error:
            ERROR_LOG.append(error)   # leak-site: exc_keep
    answer = reply_to(text)
    history.append({"role": "user", "content": text})
    history.append({"role": "assistant", "content": answer})
    return answer


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "sessions": len(SESSIONS), "leaks": sorted(PLANTED)})


async def create_session(request: Request) -> JSONResponse:
    session_id = uuid.uuid4().hex
    SESSIONS[session_id] = deque(maxlen=HISTORY)
    while len(SESSIONS) > MAX_SESSIONS:
        SESSIONS.popitem(last=False)
    if "closure_registry" in PLANTED:
        buffer = bytearray(4096)
        LISTENERS.append(lambda event, buf=buffer, sid=session_id: len(buf) + len(event))  # leak-site: closure_registry
    return JSONResponse({"id": session_id, "created": True}, status_code=201)


async def session(request: Request) -> JSONResponse:
    session_id = request.path_params["session_id"]
    history = SESSIONS.get(session_id)
    if request.method == "DELETE":
        SESSIONS.pop(session_id, None)
        return JSONResponse({"id": session_id, "ended": True})
    if history is None:
        return JSONResponse({"error": "no such session"}, status_code=404)
    return JSONResponse({"id": session_id, "messages": list(history)})


async def message(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        answer = handle_message(request.path_params["session_id"], str(body.get("content", "")))
    except KeyError:
        return JSONResponse({"error": "no such session"}, status_code=404)
    return JSONResponse({"role": "assistant", "content": answer})


async def stream(websocket: WebSocket) -> None:
    session_id = websocket.path_params["session_id"]
    await websocket.accept()
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            if frame.get("type") != "message":
                continue
            try:
                answer = handle_message(session_id, str(frame.get("content", "")))
            except KeyError:
                await websocket.send_json({"type": "error", "error": "no such session"})
                continue
            for word in answer.split():
                await websocket.send_json({"type": "token", "content": word + " "})
                await asyncio.sleep(0)
            await websocket.send_json({"type": "done"})
    except WebSocketDisconnect:
        return


app = Starlette(routes=[
    Route("/api/health", health),
    Route("/api/engine/chat/sessions", create_session, methods=["POST"]),
    Route("/api/engine/chat/sessions/{session_id}", session, methods=["GET", "DELETE"]),
    Route("/api/engine/chat/sessions/{session_id}/messages", message, methods=["POST"]),
    WebSocketRoute("/ws/chat/{session_id}", stream),
])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--leak", action="append", default=[], choices=LEAKS)
    args = parser.parse_args()
    PLANTED.update(args.leak)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
