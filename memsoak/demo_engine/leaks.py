"""Planted leaks: known, sized, attributable growth for memsoak to find.

Off by default; `DEMO_LEAKS=name[:bytes_per_op],...` turns them on. Each leak imitates a real bug
and allocates on exactly ONE line of this file, marked `# leak-site: NAME`, so a tracemalloc diff
names that file:line as the top growing site. `PlantedLeaks.describe()` reports those lines
(found by their markers, never hard-coded) in GET /api/health, so tests and benchmarks can check
attribution. The unit of one "op": session_state, fd and asyncio_task leak per session created;
response_cache, score_history, native, lru_cache, logger, small_append, filling_cache and async_gen
per message answered. `logger` allocates inside the standard library (logging), so its marked line
is the engine's CALLING line, which tracemalloc names only with more than one frame (the report walks
past standard-library frames to it); the others allocate on their marked line itself. The stores are module-level
on purpose: that is what real leaks of this kind look like.
"""
from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import re
from pathlib import Path
from typing import Callable

DEFAULT_BYTES: dict[str, int] = {
    "session_state": 64 * 1024,
    "response_cache": 64 * 1024,
    "score_history": 64 * 1024,
    "native": 1024 * 1024,
    "fd": 0,
    "asyncio_task": 4 * 1024,
    "lru_cache": 1024,
    "logger": 0,
    "small_append": 96,
    "filling_cache": 1024,
    "async_gen": 4 * 1024,
}
# filling_cache: entries kept before the oldest is evicted. At 1 KiB per entry it holds ~100 MiB when
# full, and it takes 100,000 messages to fill: ~13 minutes at ~128 messages/s (20 users, think
# 0.05-0.2 s), about an hour at the demo defaults: still filling when a 5-minute run ends.
FILLING_CACHE_ENTRIES = 100_000
PER_OP: dict[str, str] = {
    "session_state": "session", "fd": "session", "asyncio_task": "session",
    "response_cache": "message", "score_history": "message", "native": "message",
    "lru_cache": "message", "logger": "message", "small_append": "message",
    "filling_cache": "message", "async_gen": "message",
}

# The leaked state. Nothing ever removes from these.
_SESSION_STATE: dict[str, bytes] = {}
_RESPONSE_CACHE: dict[str, bytes] = {}
_SCORE_HISTORY: list[bytes] = []
_OPEN_FDS: list[int] = []
_TASKS: set[asyncio.Task[None]] = set()
_SMALL_LIST: list[bytes] = []
_FILLING_CACHE: dict[str, bytes] = {}
_STREAMS: list[object] = []      # async generators started and never finished nor closed


def _native_allocator() -> tuple[Callable[[int], int | None], str]:
    """libc's malloc as a C library calls it, so that memray sees it as well.

    memray intercepts malloc by patching each loaded library's symbol table, not dlsym: a
    malloc that ctypes looks up directly is invisible to memray too, unlike a real C
    extension's. SQLite's sqlite3_malloc64 calls libc malloc through its library's own
    binding, as a C extension would. Without SQLite, plain libc malloc (memray-blind) remains.
    """
    try:
        import _sqlite3  # the same SQLite the stdlib module loaded

        function = ctypes.CDLL(_sqlite3.__file__).sqlite3_malloc64
        function.restype, function.argtypes = ctypes.c_void_p, [ctypes.c_uint64]
        return function, "sqlite3_malloc64 -> malloc"
    except (ImportError, OSError, AttributeError):
        function = ctypes.CDLL(None).malloc
        function.restype, function.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        return function, "malloc (ctypes; memray cannot see it)"


_native_malloc, NATIVE_ALLOCATOR = _native_allocator()


def leak_session_state(session_id: str, nbytes: int) -> None:
    """Per-session state copied into a module-level registry that DELETE never cleans up."""
    _SESSION_STATE[session_id] = b"s" * nbytes  # leak-site: session_state


def leak_response_cache(cache_key: str, nbytes: int) -> None:
    """A second response cache with no bound, whose key accidentally includes the message id."""
    _RESPONSE_CACHE[cache_key] = b"r" * nbytes  # leak-site: response_cache


def leak_score_history(nbytes: int) -> None:
    """Agent scoring history appended to and never trimmed."""
    _SCORE_HISTORY.append(b"h" * nbytes)  # leak-site: score_history


def leak_native(nbytes: int) -> None:
    """A C library's malloc never freed: in RSS (touched) and memray, invisible to tracemalloc."""
    block = _native_malloc(nbytes)  # leak-site: native
    if block:
        ctypes.memset(block, 0x6E, nbytes)  # touch every page so it counts in RSS


def leak_fd() -> None:
    """A file opened per session and never closed."""
    _OPEN_FDS.append(os.open(os.devnull, os.O_RDONLY))  # leak-site: fd


async def _wait_forever(payload: bytes) -> None:
    await asyncio.Event().wait()  # never set: the task and its payload live as long as the process


def leak_asyncio_task(nbytes: int) -> None:
    """A background task per session that nobody cancels (holding a payload of nbytes)."""
    _TASKS.add(asyncio.get_running_loop().create_task(_wait_forever(b"t" * nbytes)))  # leak-site: asyncio_task


@functools.lru_cache(maxsize=None)
def _render_reply(cache_key: str, nbytes: int) -> bytes:
    """A memoised renderer whose key includes the message id: every call is a miss, kept forever."""
    return b"l" * nbytes  # leak-site: lru_cache


def leak_lru_cache(cache_key: str, nbytes: int) -> None:
    """An unbounded functools.lru_cache keyed per message."""
    _render_reply(cache_key, nbytes)


def leak_logger(message_id: str) -> None:
    """A logger per message, each given a handler: logging's manager keeps every logger forever."""
    logging.getLogger(f"demo_engine.message.{message_id}").addHandler(logging.NullHandler())  # leak-site: logger


def leak_small_append(nbytes: int) -> None:
    """A few bytes of bookkeeping per message appended to a module-level list (64-128 B)."""
    _SMALL_LIST.append(b"a" * nbytes)  # leak-site: small_append


def leak_filling_cache(cache_key: str, nbytes: int) -> None:
    """A BOUNDED cache (FIFO eviction) sized so that it is still filling when a 5-minute run ends."""
    _FILLING_CACHE[cache_key] = b"c" * nbytes  # leak-site: filling_cache
    if len(_FILLING_CACHE) > FILLING_CACHE_ENTRIES:
        del _FILLING_CACHE[next(iter(_FILLING_CACHE))]


async def _stream_reply(nbytes: int):  # type: ignore[no-untyped-def]
    buffer = bytearray(nbytes)  # leak-site: async_gen
    yield len(buffer)
    yield bytes(buffer)


def leak_async_gen(nbytes: int) -> None:
    """A streaming reply started (one step: its buffer allocated) and abandoned, never closed, but
    still registered in a module-level list of open streams."""
    stream = _stream_reply(nbytes)
    try:
        stream.asend(None).send(None)   # run to the first yield: the buffer now lives in its frame
    except StopIteration:
        pass
    _STREAMS.append(stream)


def _site_lines() -> dict[str, int]:
    pattern = re.compile(r"# leak-site: (\w+)$")
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return {match.group(1): number for number, line in enumerate(lines, start=1)
            if (match := pattern.search(line))}


SITE_LINES: dict[str, int] = _site_lines()


class PlantedLeaks:
    """The leaks chosen for this engine, called by the engine at each session and message."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = dict(sizes)
        self.ops: dict[str, int] = {name: 0 for name in self.sizes}

    def on_session_created(self, session_id: str) -> None:
        if "session_state" in self.sizes:
            leak_session_state(session_id, self.sizes["session_state"])
        if "fd" in self.sizes:
            leak_fd()
        if "asyncio_task" in self.sizes:
            leak_asyncio_task(self.sizes["asyncio_task"])
        self._count("session")

    def on_message(self, session_id: str, message_id: str) -> None:
        if "response_cache" in self.sizes:
            leak_response_cache(f"{session_id}:{message_id}", self.sizes["response_cache"])
        if "score_history" in self.sizes:
            leak_score_history(self.sizes["score_history"])
        if "native" in self.sizes:
            leak_native(self.sizes["native"])
        if "lru_cache" in self.sizes:
            leak_lru_cache(f"{session_id}:{message_id}", self.sizes["lru_cache"])
        if "logger" in self.sizes:
            leak_logger(message_id)
        if "small_append" in self.sizes:
            leak_small_append(self.sizes["small_append"])
        if "filling_cache" in self.sizes:
            leak_filling_cache(f"{session_id}:{message_id}", self.sizes["filling_cache"])
        if "async_gen" in self.sizes:
            leak_async_gen(self.sizes["async_gen"])
        self._count("message")

    def _count(self, unit: str) -> None:
        for name in self.ops:
            if PER_OP[name] == unit:
                self.ops[name] += 1

    def describe(self) -> dict[str, dict[str, object]]:
        """For GET /api/health: {name: {bytes_per_op, site, per, ops}} of the planted leaks."""
        described: dict[str, dict[str, object]] = {
            name: {"bytes_per_op": size, "site": f"memsoak/demo_engine/leaks.py:{SITE_LINES[name]}",
                   "per": PER_OP[name], "ops": self.ops[name]}
            for name, size in self.sizes.items()}
        if "native" in described:
            described["native"]["allocator"] = NATIVE_ALLOCATOR
        return described
