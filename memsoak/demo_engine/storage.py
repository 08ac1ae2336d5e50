"""Where sessions and messages persist: SQLite by default, PostgreSQL when DATABASE_URL says so.

Both backends offer the same small async interface (`Storage`). SQLite runs on one connection
guarded by a lock, called through `asyncio.to_thread` so the event loop never waits on disk; it
uses WAL so several uvicorn workers can share one file. `open_storage()` picks the backend from
the URL; `preflight()` checks the URL synchronously before the server starts, so a bad URL is a
one-line error instead of a startup traceback. Rows are plain dicts with ISO-8601 UTC times.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

SESSION_COLUMNS = ("id", "agent_id", "model", "title", "status", "session_type", "created_at",
                   "ended_at")
MESSAGE_COLUMNS = ("id", "session_id", "role", "content", "input_tokens", "output_tokens",
                   "cost_usd", "latency_ms", "finish_reason", "created_at")


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or refused the operation (answered as 503)."""


class Storage(Protocol):
    kind: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def create_session(self, row: dict[str, Any]) -> None: ...
    async def get_session(self, session_id: str) -> dict[str, Any] | None: ...
    async def end_session(self, session_id: str, ended_at: str) -> dict[str, Any] | None: ...
    async def reactivate_session(self, session_id: str) -> None: ...
    async def add_messages(self, rows: list[dict[str, Any]]) -> None: ...
    async def list_messages(self, session_id: str, newest: int | None = None) -> list[dict[str, Any]]: ...


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_sessions (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, model TEXT NOT NULL, title TEXT,
    status TEXT NOT NULL, session_type TEXT NOT NULL, created_at TEXT NOT NULL, ended_at TEXT);
CREATE TABLE IF NOT EXISTS chat_messages (
    n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES chat_sessions(id), role TEXT NOT NULL, content TEXT NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, latency_ms REAL,
    finish_reason TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chat_messages_by_session ON chat_messages (session_id, n);
"""


def default_sqlite_path() -> Path:
    """A temp file shared by the processes of one process group (uvicorn's workers), not others."""
    folder = Path(tempfile.gettempdir()) / f"memsoak-demo-engine-{os.getuid()}-{os.getpgid(0)}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / "engine.sqlite3"


def sqlite_path(url: str) -> Path:
    if not url:
        return default_sqlite_path()
    return Path(url[len("sqlite:///"):])  # sqlite:////abs/path or sqlite:///relative/path


class SQLiteStorage:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SQLITE_SCHEMA)
        return conn

    def _run(self, sql: str, params: tuple[Any, ...] | list[tuple[Any, ...]] = (),
             many: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            assert self._conn is not None, "storage used before open()"
            try:
                if many:
                    with self._conn:  # one transaction for the batch
                        self._conn.execute("BEGIN")
                        self._conn.executemany(sql, params)  # type: ignore[arg-type]
                    return []
                return [dict(row) for row in self._conn.execute(sql, params).fetchall()]
            except sqlite3.OperationalError as error:
                raise StorageUnavailable(f"sqlite: {error}") from error

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)

    async def create_session(self, row: dict[str, Any]) -> None:
        sql = f"INSERT INTO chat_sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({', '.join('?' * len(SESSION_COLUMNS))})"
        await asyncio.to_thread(self._run, sql, tuple(row.get(c) for c in SESSION_COLUMNS))

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        rows = await asyncio.to_thread(self._run, "SELECT * FROM chat_sessions WHERE id = ?", (session_id,))
        return rows[0] if rows else None

    async def end_session(self, session_id: str, ended_at: str) -> dict[str, Any] | None:
        await asyncio.to_thread(
            self._run, "UPDATE chat_sessions SET status = 'ended', ended_at = COALESCE(ended_at, ?) WHERE id = ?",
            (ended_at, session_id))
        return await self.get_session(session_id)

    async def reactivate_session(self, session_id: str) -> None:
        await asyncio.to_thread(
            self._run, "UPDATE chat_sessions SET status = 'active', ended_at = NULL WHERE id = ?", (session_id,))

    async def add_messages(self, rows: list[dict[str, Any]]) -> None:
        sql = f"INSERT INTO chat_messages ({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * len(MESSAGE_COLUMNS))})"
        await asyncio.to_thread(self._run, sql, [tuple(r.get(c) for c in MESSAGE_COLUMNS) for r in rows], True)

    async def list_messages(self, session_id: str, newest: int | None = None) -> list[dict[str, Any]]:
        columns = ", ".join(MESSAGE_COLUMNS)
        if newest is None:
            sql, params = f"SELECT {columns} FROM chat_messages WHERE session_id = ? ORDER BY n", (session_id,)
        else:
            sql = (f"SELECT {columns} FROM (SELECT {columns}, n FROM chat_messages WHERE session_id = ? "
                   "ORDER BY n DESC LIMIT ?) ORDER BY n")
            params = (session_id, newest)  # type: ignore[assignment]
        return await asyncio.to_thread(self._run, sql, params)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def check_url(url: str) -> None:
    """Raise ValueError naming the fix when DATABASE_URL is neither empty, sqlite nor postgresql."""
    if url and not is_postgres(url) and not url.startswith("sqlite:///"):
        raise ValueError(f"DATABASE_URL={url!r} is not supported; use postgresql://USER@HOST:PORT/DB, "
                         "sqlite:///PATH, or leave it unset for a temporary SQLite file")


def open_storage(url: str, pool_size: int = 4) -> Storage:
    check_url(url)
    if is_postgres(url):
        from .storage_pg import PostgresStorage

        return PostgresStorage(url, pool_size)
    return SQLiteStorage(sqlite_path(url))


def preflight(url: str) -> None:
    """Connect once and create the schema, synchronously; raise ValueError with one line if not."""
    check_url(url)
    if is_postgres(url):
        from .storage_pg import preflight_postgres

        preflight_postgres(url)
        return
    path = sqlite_path(url)
    try:
        SQLiteStorage(path)._connect().close()
    except sqlite3.Error as error:
        raise ValueError(f"cannot open SQLite database {path}: {error}; check DATABASE_URL") from None
