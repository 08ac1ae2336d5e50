"""The HTTP and WebSocket shell of the demo engine (FastAPI), with Aria's paths and shapes.

`create_app(settings)` builds the ASGI app; the module attribute `app` builds one from the
environment on first access, so `uvicorn memsoak.demo_engine.app:app --workers 2` works and importing
this module has no side effect. Every refusal is JSON `{"error": "one line naming the fix"}`
(validation errors add `"detail"`): 400 bad JSON, 401 wrong key, 404 unknown session, 409 ended
session or duplicate message (404 with Aria's `"detail"` under http_semantics=aria), 413/422 bad
fields, 429 rate limit, 503 database unreachable. The API key and the rate limit are checked by a
small ASGI guard before the body is even read.
"""
from __future__ import annotations

import logging
import secrets
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from .engine import Engine, EngineError
from .schemas import MessageIn, SessionIn, first_error
from .settings import Settings, load_settings
from .storage import StorageUnavailable, preflight
from .stream import serve_chat_stream

log = logging.getLogger("demo_engine")
def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


LIMITED_METHODS = ("POST", "PUT", "PATCH", "DELETE")  # Aria rate-limits writes only


def client_id(scope: Scope) -> str:
    """Who a request is from, as Aria's SecurityMiddleware decides: the first X-Forwarded-For
    entry, else X-Real-IP, else the peer address."""
    headers = dict(scope.get("headers") or ())
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    if forwarded:
        return forwarded.split(",")[0].strip()
    real_ip = headers.get(b"x-real-ip", b"").decode("latin-1")
    if real_ip:
        return real_ip
    return scope["client"][0] if scope.get("client") else "unknown"


class ApiGuard:
    """Rate limit and API key, answered before the body is read.

    rate_limiter=aria: Aria's windows for every POST/PUT/PATCH/DELETE, per `client_id`, checked
    before the key as Aria's middleware runs before its key dependency (a refused key counts).
    rate_limiter=bucket: the token bucket per peer IP, for /api/engine/* after the key.
    """

    def __init__(self, app: ASGIApp, settings: Settings, engine: Engine) -> None:
        self.app = app
        self.header_name = settings.api_key_header
        self.header = settings.api_key_header.lower().encode("latin-1")
        self.key = settings.api_key.encode("utf-8")
        self.engine = engine
        self.aria_limit = settings.rate_limiter == "aria"
        self.key_detail = {"detail": "Invalid or missing API key"} if settings.http_semantics == "aria" else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                if self.aria_limit and scope["method"] in LIMITED_METHODS:
                    self.engine.check_aria_rate(client_id(scope))
                if scope["path"].startswith("/api/engine"):
                    sent = next((value for name, value in scope["headers"] if name == self.header), b"")
                    if not secrets.compare_digest(sent, self.key):
                        response = _error(401, f"missing or wrong API key: send it in the "
                                               f"{self.header_name} header", **self.key_detail)
                        return await response(scope, receive, send)
                    client = scope["client"][0] if scope.get("client") else "unknown"
                    self.engine.check_rate(client)
            except EngineError as refusal:
                return await _refusal(refusal)(scope, receive, send)
        await self.app(scope, receive, send)


def _refusal(error: EngineError) -> JSONResponse:
    extra = {"detail": error.detail} if error.detail else {}
    return _error(error.status, error.message, error.headers, **extra)


def create_app(settings: Settings) -> FastAPI:
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    app = FastAPI(title="memsoak demo engine (Aria-compatible)", lifespan=lifespan)
    app.state.engine = engine
    app.add_middleware(ApiGuard, settings=settings, engine=engine)

    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, error: EngineError) -> JSONResponse:
        return _refusal(error)

    @app.exception_handler(StorageUnavailable)
    async def _storage_error(_: Request, error: StorageUnavailable) -> JSONResponse:
        log.warning("storage unavailable: %s", error)
        return _error(503, f"database unavailable ({str(error).splitlines()[0][:200]}); retry later")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        status, message, detail = first_error(list(error.errors()))
        return _error(status, message, detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return engine.health()

    @app.post("/api/engine/chat/sessions", status_code=201)
    async def create_session(body: SessionIn | None = None) -> dict[str, Any]:
        body = body or SessionIn()
        return await engine.create_session(body.agent_id, body.model, body.title, body.session_type)

    @app.get("/api/engine/chat/sessions/{session_id}")
    async def get_session(session_id: str) -> dict[str, Any]:
        return await engine.get_session(session_id)

    @app.get("/api/engine/chat/sessions/{session_id}/messages")
    async def get_messages(session_id: str) -> dict[str, Any]:
        return {"messages": (await engine.get_session(session_id))["messages"]}

    @app.post("/api/engine/chat/sessions/{session_id}/messages")
    async def post_message(session_id: str, body: MessageIn) -> dict[str, Any]:
        return await engine.send_message(session_id, body.content, body.enable_thinking, body.enable_tools)

    @app.delete("/api/engine/chat/sessions/{session_id}")
    async def end_session(session_id: str) -> dict[str, Any]:
        return await engine.end_session(session_id)

    @app.websocket("/ws/chat/{session_id}")
    async def chat_stream(websocket: WebSocket, session_id: str) -> None:
        await serve_chat_stream(websocket, session_id, engine, settings)

    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # built lazily from the environment: `uvicorn memsoak.demo_engine.app:app`
        try:
            settings = load_settings()
            preflight(settings.database_url)
        except ValueError as error:  # one line naming the fix, not uvicorn's traceback
            print(f"memsoak.demo_engine.app: error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        built = create_app(settings)
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
