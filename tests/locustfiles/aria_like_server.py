"""A small server that streams like the real Aria engine, for StreamUser's tests.

Until the demo engine's strict mode lands, this is the real WebSocket process the tests talk to:
sessions over REST, `/ws/chat/{id}` answering with the real engine's frames (`stream_start`,
`thinking`, `content`..., `stream_end`, a `pong` keepalive every --keepalive-s seconds), a close with
4401 for a wrong key, and on request replies that never end (keepalives only) so the deadline shows.
Run as `python aria_like_server.py --port N [--never-end-every K] [--documented]`.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import uuid

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--api-key", default="demo-key")
parser.add_argument("--ws-key", default="", help="key the WebSocket wants (default: --api-key)")
parser.add_argument("--keepalive-s", type=float, default=1.0)
parser.add_argument("--never-end-every", type=int, default=0, help="every K-th reply never ends (0: none)")
parser.add_argument("--documented", action="store_true", help="send token/done (the docstring's frames)")
parser.add_argument("--unknown-frame", default="", help="also send a frame of this type in every reply")
args = parser.parse_args()

app = FastAPI()
sessions: set[str] = set()
replies = itertools.count(1)


def authorized(request: Request) -> bool:
    return request.headers.get("x-api-key") == args.api_key


@app.get("/api/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/api/engine/chat/sessions")
async def create(request: Request):
    if not authorized(request):
        return JSONResponse({"detail": "bad key"}, status_code=401)
    sid = str(uuid.uuid4())
    sessions.add(sid)
    return {"id": sid}


@app.api_route("/api/engine/chat/sessions/{sid}", methods=["GET", "DELETE"])
async def one(sid: str, request: Request):
    if not authorized(request):
        return JSONResponse({"detail": "bad key"}, status_code=401)
    return {"id": sid}


@app.websocket("/ws/chat/{sid}")
async def chat(ws: WebSocket, sid: str) -> None:
    await ws.accept()
    if ws.query_params.get("api_key") != (args.ws_key or args.api_key):
        await ws.close(code=4401, reason="Unauthorized")
        return

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(args.keepalive_s)
            await ws.send_text(json.dumps({"type": "pong"}))

    task = asyncio.create_task(keepalive())
    try:
        while True:
            data = json.loads(await ws.receive_text())
            number = next(replies)
            if args.never_end_every and number % args.never_end_every == 0:
                await ws.send_text(json.dumps({"type": "stream_start"}))
                continue  # only keepalives from now on
            text, end = ("token", "done") if args.documented else ("content", "stream_end")
            if not args.documented:
                await ws.send_text(json.dumps({"type": "stream_start"}))
                await ws.send_text(json.dumps({"type": "thinking", "content": "hm"}))
            if args.unknown_frame:
                await ws.send_text(json.dumps({"type": args.unknown_frame}))
            for word in str(data.get("content", "")).split()[:5] or ["ok"]:
                await asyncio.sleep(0.01)
                await ws.send_text(json.dumps({"type": text, "content": word + " "}))
            await ws.send_text(json.dumps({"type": end, "message_id": str(uuid.uuid4())}))
    except WebSocketDisconnect:
        pass
    finally:
        task.cancel()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
