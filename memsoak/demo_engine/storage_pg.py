"""PostgreSQL storage on psycopg 3's async connections, with a small pool of our own.

psycopg_pool is not a dependency, so the pool is a queue of idle connections grown on demand up
to `pool_size`; a connection that fails with OperationalError is discarded and the request gets
`StorageUnavailable` (503), and the next request opens a fresh one. Schema creation takes an
advisory lock because several uvicorn workers create it at the same moment. A `search_path` given
in the URL (`?options=-csearch_path%3Dmy_schema`) is respected, which is how tests isolate runs.
"""
from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .storage import MESSAGE_COLUMNS, SESSION_COLUMNS, StorageUnavailable

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_sessions (
    id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, model TEXT NOT NULL, title TEXT,
    status TEXT NOT NULL, session_type TEXT NOT NULL, created_at TEXT NOT NULL, ended_at TEXT);
CREATE TABLE IF NOT EXISTS chat_messages (
    n BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES chat_sessions(id), role TEXT NOT NULL, content TEXT NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, cost_usd DOUBLE PRECISION, latency_ms DOUBLE PRECISION,
    finish_reason TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chat_messages_by_session ON chat_messages (session_id, n);
"""
_SCHEMA_LOCK_KEY = 0x6D656D736F616B  # "memsoak": serialises CREATE TABLE across workers


def preflight_postgres(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            conn.execute(PG_SCHEMA)  # type: ignore[arg-type]
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot use PostgreSQL at DATABASE_URL: {first_line}; "
                         "check that the server runs and the URL is right") from None


class PostgresStorage:
    kind = "postgresql"

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self._opened = 0

    async def _new_connection(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True, row_factory=dict_row,
                                                     connect_timeout=10)

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        for _ in range(300):  # bounded: about 30 s of waiting for a free connection
            if not self._idle.empty():
                return self._idle.get_nowait()
            if self._opened < self.pool_size:
                self._opened += 1  # counted before the await so concurrent callers see it
                try:
                    return await self._new_connection()
                except psycopg.Error as error:
                    self._opened -= 1
                    raise StorageUnavailable(f"postgresql: {error}") from error
                except BaseException:
                    self._opened -= 1
                    raise
            try:
                return await asyncio.wait_for(self._idle.get(), 0.1)
            except TimeoutError:
                continue  # a discarded connection frees a slot without waking waiters: look again
        raise StorageUnavailable("postgresql: no free connection for 30 s; raise DEMO_DB_POOL_SIZE")

    async def _execute(self, sql: str, params: Any = (), many: bool = False) -> list[dict[str, Any]]:
        conn = await self._acquire()
        try:
            if many:
                async with conn.transaction():
                    async with conn.cursor() as cursor:
                        await cursor.executemany(sql, params)  # type: ignore[arg-type]
                rows: list[dict[str, Any]] = []
            else:
                cursor = await conn.execute(sql, params)  # type: ignore[arg-type]
                rows = await cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError as error:
            self._opened -= 1
            await conn.close()
            raise StorageUnavailable(f"postgresql: {error}") from error
        except BaseException:
            # Cancelled mid-query (client went away) or a bug: the connection may be mid-protocol.
            self._opened -= 1
            await conn.close()
            raise
        self._idle.put_nowait(conn)
        return rows

    async def open(self) -> None:
        conn = await self._acquire()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
                await conn.execute(PG_SCHEMA)  # type: ignore[arg-type]
        finally:
            self._idle.put_nowait(conn)

    async def close(self) -> None:
        while not self._idle.empty():
            await self._idle.get_nowait().close()
            self._opened -= 1

    async def create_session(self, row: dict[str, Any]) -> None:
        sql = (f"INSERT INTO chat_sessions ({', '.join(SESSION_COLUMNS)}) "
               f"VALUES ({', '.join(['%s'] * len(SESSION_COLUMNS))})")
        await self._execute(sql, tuple(row.get(c) for c in SESSION_COLUMNS))

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        rows = await self._execute("SELECT * FROM chat_sessions WHERE id = %s", (session_id,))
        return rows[0] if rows else None

    async def end_session(self, session_id: str, ended_at: str) -> dict[str, Any] | None:
        rows = await self._execute(
            "UPDATE chat_sessions SET status = 'ended', ended_at = COALESCE(ended_at, %s) "
            "WHERE id = %s RETURNING *", (ended_at, session_id))
        return rows[0] if rows else None

    async def reactivate_session(self, session_id: str) -> None:
        await self._execute("UPDATE chat_sessions SET status = 'active', ended_at = NULL WHERE id = %s",
                            (session_id,))

    async def add_messages(self, rows: list[dict[str, Any]]) -> None:
        sql = (f"INSERT INTO chat_messages ({', '.join(MESSAGE_COLUMNS)}) "
               f"VALUES ({', '.join(['%s'] * len(MESSAGE_COLUMNS))})")
        await self._execute(sql, [tuple(r.get(c) for c in MESSAGE_COLUMNS) for r in rows], many=True)

    async def list_messages(self, session_id: str, newest: int | None = None) -> list[dict[str, Any]]:
        columns = ", ".join(MESSAGE_COLUMNS)
        if newest is None:
            return await self._execute(
                f"SELECT {columns} FROM chat_messages WHERE session_id = %s ORDER BY n", (session_id,))
        return await self._execute(
            f"SELECT {columns} FROM (SELECT {columns}, n FROM chat_messages WHERE session_id = %s "
            "ORDER BY n DESC LIMIT %s) AS recent ORDER BY n", (session_id, newest))
