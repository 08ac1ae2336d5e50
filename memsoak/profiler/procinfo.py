"""The kernel's view of a process, read from /proc on Linux without importing psutil.

The hook lives in the engine's heap, and every container its modules create stays there for the
engine's garbage collector to walk at each full collection. psutil is the largest of them: importing
it adds ~3,500 tracked objects, and on an engine that churns small objects a loop measured 3-6%
slower with psutil merely imported (docs/hook.md, "The hook's own footprint in the garbage
collector"). The hook asks the kernel five things; on Linux each is one small /proc file, read raw.

`process(pid)` returns `ProcFS` where /proc is there, with the part of `psutil.Process`'s
interface the hook uses (`pid`, `memory_info()`, `memory_full_info()`, `num_fds()`, `num_threads()`,
`cmdline()`, `status()`, `children()`), else a `psutil.Process`: psutil stays the hook's dependency
for other systems and is imported only there (or for `children()`, which only the tree probe's path
without /proc/PID/task/TID/children calls). Errors are OSError (or psutil.Error), and the sampler
counts them per probe as before.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple

PROC = "/proc"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
ZOMBIE = "zombie"   # psutil.STATUS_ZOMBIE's value


def read_proc(path: str) -> bytes:
    """A small /proc file, read raw: no text-mode open() in the sampler.

    A text-mode open() makes CPython 3.11 look attributes up by names it creates afresh at each call
    (codec lookups), and the interpreter's type attribute cache keeps up to 4096 such names alive:
    measured under the hook at 1 Hz on an idle engine, +16 KB of traced heap in 4 minutes, still
    rising, which a soak reads as the engine's own Python heap growth.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1] and len(chunks) < 64:  # /proc files are small; bounded anyway
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks)
    finally:
        os.close(fd)


class Memory(NamedTuple):
    rss: int
    vms: int


class FullMemory(NamedTuple):
    rss: int
    vms: int
    uss: int


class ProcFS:
    """One process read through /proc/PID (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._dir = f"{PROC}/{pid}"

    def _stat_after_name(self) -> list[bytes]:
        # the command name is in parentheses and may hold spaces or ')': split after the last one
        data = read_proc(f"{self._dir}/stat")
        return data[data.rindex(b")") + 2:].split()

    def memory_info(self) -> Memory:
        size, resident = read_proc(f"{self._dir}/statm").split()[:2]
        return Memory(int(resident) * PAGE_SIZE, int(size) * PAGE_SIZE)

    def memory_full_info(self) -> FullMemory:
        """USS as psutil computes it: private clean + private dirty + private hugetlb pages."""
        try:
            data = read_proc(f"{self._dir}/smaps_rollup")
        except FileNotFoundError:   # kernels before 4.14: the per-mapping file, same fields
            data = read_proc(f"{self._dir}/smaps")
        uss = 0
        for line in data.splitlines():
            if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Private_Hugetlb:")):
                uss += int(line.split()[1]) * 1024
        memory = self.memory_info()
        return FullMemory(memory.rss, memory.vms, uss)

    def num_fds(self) -> int:
        return len(os.listdir(f"{self._dir}/fd"))

    def num_threads(self) -> int:
        return int(self._stat_after_name()[17])   # field 20 of proc(5)

    def status(self) -> str:
        """"zombie" (psutil.STATUS_ZOMBIE) for a process exited but not reaped, else "running"."""
        return ZOMBIE if self._stat_after_name()[0] == b"Z" else "running"

    def is_zombie(self) -> bool:
        return self.status() == ZOMBIE

    def cmdline(self) -> list[str]:
        raw = read_proc(f"{self._dir}/cmdline")
        return [os.fsdecode(part) for part in raw.rstrip(b"\0").split(b"\0")] if raw else []

    def children(self, recursive: bool = False) -> list[Any]:
        import psutil   # here only: see the module docstring

        return psutil.Process(self.pid).children(recursive=recursive)


def has_procfs() -> bool:
    return os.path.exists(f"{PROC}/{os.getpid()}/statm")


def process(pid: int | None = None) -> Any:
    """The process PID (default: this one): ProcFS where there is /proc, else a psutil.Process."""
    pid = os.getpid() if pid is None else pid
    if has_procfs():
        return ProcFS(pid)
    import psutil   # here only: see the module docstring

    return psutil.Process(pid)


def alive(pid: int) -> bool:
    """Running and not a zombie (a killed worker whose parent has not reaped it yet)."""
    try:
        return process(pid).status() != ZOMBIE
    except Exception:   # gone (OSError, psutil.NoSuchProcess) or not ours to read
        return False
