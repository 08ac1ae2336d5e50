"""The sampler thread: every interval, run each probe, time the whole sample, append it to the ring.

Probes live in `Sampler.probes` (name -> callable returning SAMPLE fields). Each runs in its own
try/except: a probe that raises leaves its fields null, adds one to `errors[name]` and the next probe
still runs, so the engine never sees the hook's failures and the series has no holes. The thread is a
daemon and waits on an Event, so `stop()` ends it within one wake-up.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from memsoak.contract import SAMPLE_FIELDS, SAMPLE_FLOAT_FIELDS as FLOAT_FIELDS  # noqa: F401  (stdlib only)

from . import probes, procinfo
from .config import HookConfig
from .ring import SampleRing



class ErrorCounts:
    """Errors by probe name; also counts the hook's non-probe failures (server, snapshots)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_probe: dict[str, int] = {}
        self.last: dict[str, str] = {}

    def add(self, name: str, error: BaseException) -> None:
        with self._lock:
            self.by_probe[name] = self.by_probe.get(name, 0) + 1
            self.last[name] = f"{type(error).__name__}: {error}"[:200]

    @property
    def total(self) -> int:
        return sum(self.by_probe.values())

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.by_probe.values()), "by_probe": dict(self.by_probe),
                    "last": dict(self.last)}


def in_process_probes(config: HookConfig) -> dict[str, Callable[[], dict[str, Any]]]:
    proc = procinfo.process()   # /proc on Linux: no psutil in the engine's heap
    own_threads = probes.hook_thread_counter()
    table: dict[str, Callable[[], dict[str, Any]]] = {
        "memory": lambda: probes.memory(proc),
        "tree": lambda: probes.tree(proc),
        "tracemalloc": probes.traced,
        "allocated_blocks": probes.allocated_blocks,
        "gc": probes.gc_counters,
        "open_fds": lambda: probes.open_fds(proc),
        "threads": lambda: probes.threads(proc, own_threads),
        "asyncio_tasks": probes.AsyncioTasks(),
    }
    if config.uss:
        table["uss"] = lambda: probes.uss(proc)
    if config.gc_objects:
        table["gc_objects"] = probes.gc_objects
    return table


class Sampler:
    def __init__(self, ring: SampleRing, probe_table: dict[str, Callable[[], dict[str, Any]]],
                 interval: float, errors: ErrorCounts, pid: int | None = None) -> None:
        self.ring = ring
        self.probes = probe_table
        self.interval = interval
        self.errors = errors
        self.pid = os.getpid() if pid is None else pid
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = {name: i for i, name in enumerate(SAMPLE_FIELDS)}

    def sample_once(self) -> int:
        started = time.thread_time_ns()  # CPU of this thread: GIL waits are not the hook's cost
        values: list[Any] = [None] * len(SAMPLE_FIELDS)
        values[1] = time.monotonic()
        values[2] = time.time()
        values[3] = self.pid
        for name, probe in list(self.probes.items()):
            try:
                for field, value in probe().items():
                    values[self._index[field]] = value
            except Exception as error:  # a probe's failure must never reach the engine
                self.errors.add(name, error)
        values[self._index["hook_errors"]] = self.errors.total
        values[self._index["sample_cost_us"]] = (time.thread_time_ns() - started) // 1000
        return self.ring.append(values)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memsoak-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as error:  # e.g. MemoryError in the ring: count it, keep going
                self.errors.add("sampler", error)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (stopped process, overloaded box): do not burst to catch up
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)
