"""The probes a sample is made of: each a small function returning a few SAMPLE fields.

Every probe is called by the sampler inside its own try/except, so a failing probe costs only its
fields (null) and one count in the error table. Probes read the kernel's view of the process
(`/proc`, through `procinfo`: read directly on Linux, psutil elsewhere) and the interpreter's own
counters; none of them takes a lock the engine holds.

Asyncio tasks: the hook runs no event loop and patches nothing. CPython keeps every task it has not
yet garbage-collected in a module-level weak set (`asyncio.tasks._all_tasks` on 3.11,
`_scheduled_tasks` + `_eager_tasks` on 3.12/3.13); this probe copies that set (retrying when another
thread changes it during the copy, as `asyncio.all_tasks` itself does), counts the tasks that are not
done and remembers each task's loop in a weak set. `asyncio_tasks` is the pending-task count over all
loops still open in the process, and null until a loop has been seen. Cost: O(live tasks).
"""
from __future__ import annotations

import gc
import os
import sys
import threading
import weakref

import _tracemalloc  # tracemalloc's C half: no tracemalloc.py (and pickle) in the engine for two reads
from typing import Any, Callable

from .procinfo import ProcFS, read_proc

Probe = Callable[[], dict[str, Any]]
Process = Any   # procinfo.process(pid) or a psutil.Process: the same few methods
_HAS_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def memory(proc: Process) -> dict[str, Any]:
    info = proc.memory_info()
    return {"rss_bytes": info.rss, "vms_bytes": info.vms}


def _proc_children(pid: int) -> list[int]:
    found: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            found.extend(int(child) for child in read_proc(f"/proc/{pid}/task/{tid}/children").split())
        except OSError:  # the thread ended while we looked
            continue
    return found


def tree(proc: Process) -> dict[str, Any]:
    """RSS summed over the process and all its descendants (multi-worker servers).

    On Linux it walks /proc/PID/task/TID/children, which costs O(tree); psutil's children() (the
    fallback elsewhere) would read /proc/*/stat for every process on the machine each second.
    """
    if _HAS_PROC_CHILDREN:
        total, count, pending = 0, 0, [proc.pid]
        while pending and count < 10_000:
            pid = pending.pop()
            try:
                total += ProcFS(pid).memory_info().rss
                pending.extend(_proc_children(pid))
                count += 1
            except (OSError, ValueError):  # exited between listing and reading
                continue
        return {"tree_rss_bytes": total, "tree_procs": count}
    members = [proc, *proc.children(recursive=True)]
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except Exception:   # psutil.Error: exited while we looked
            continue
    return {"tree_rss_bytes": total, "tree_procs": len(members)}


def uss(proc: Process) -> dict[str, Any]:
    return {"uss_bytes": proc.memory_full_info().uss}


def traced() -> dict[str, Any]:
    if not _tracemalloc.is_tracing():
        return {"traced_current_bytes": None, "traced_peak_bytes": None}
    current, peak = _tracemalloc.get_traced_memory()
    return {"traced_current_bytes": current, "traced_peak_bytes": peak}


def allocated_blocks() -> dict[str, Any]:
    return {"allocated_blocks": sys.getallocatedblocks()}


def gc_counters() -> dict[str, Any]:
    count0, count1, count2 = gc.get_count()
    stats = gc.get_stats()
    return {"gc_count_0": count0, "gc_count_1": count1, "gc_count_2": count2,
            **{f"gc_collections_{gen}": stats[gen]["collections"] for gen in range(3)}}


def gc_objects() -> dict[str, Any]:
    return {"gc_objects": len(gc.get_objects())}


def open_fds(proc: Process) -> dict[str, Any]:
    return {"open_fds": proc.num_fds()}


def threads(proc: Process, own_threads: Callable[[], int]) -> dict[str, Any]:
    """OS threads of the process minus the hook's own (sampler, server, request handlers)."""
    return {"threads": max(0, proc.num_threads() - own_threads())}


class AsyncioTasks:
    """Counts pending tasks of every open event loop without touching any loop."""

    _SET_NAMES = ("_all_tasks", "_scheduled_tasks", "_eager_tasks")

    def __init__(self) -> None:
        self._loops: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def _task_sets(self) -> list[Any]:
        # never import asyncio ourselves: an engine that has not imported it has no tasks
        tasks_module = sys.modules.get("asyncio.tasks")
        if tasks_module is None:
            return []
        return [getattr(tasks_module, name) for name in self._SET_NAMES
                if getattr(tasks_module, name, None) is not None]

    def __call__(self) -> dict[str, Any]:
        pending = 0
        for task_set in self._task_sets():
            tasks: list[Any] = []
            for _attempt in range(100):
                try:
                    tasks = list(task_set)
                    break
                except RuntimeError:  # changed size while copying: another thread is busy
                    continue
            for task in tasks:
                loop = task.get_loop()
                if loop not in self._loops:
                    self._loops.add(loop)
                if not task.done():
                    pending += 1
        if not any(not loop.is_closed() for loop in list(self._loops)):
            return {"asyncio_tasks": None}
        return {"asyncio_tasks": pending}


def hook_thread_counter() -> Callable[[], int]:
    def count() -> int:
        return sum(1 for thread in threading.enumerate() if thread.name.startswith("memsoak-"))
    return count
