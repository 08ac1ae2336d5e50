"""The Python side of the sampled allocation tracker (the C extension `memsoak.profiler._memsoak_sampler`).

The extension wraps CPython's object and mem allocator domains and samples allocations as a
Poisson process over bytes (mean `sample_bytes`): a block of s bytes is sampled with probability
1 - exp(-s/mean) and weighted by its inverse, so weighted sums are unbiased estimates of live and
allocated bytes. Each sampled block keeps its Python stack (innermost first) until it is freed.
Everything here is safe to call when the extension is missing: `start()` then returns the reason,
which the hook prints once before falling back to tracemalloc (docs/hook.md, "Allocation tracking").
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

MODES = ("sampled", "tracemalloc", "off")
DEFAULT_SAMPLE_BYTES = 512 * 1024
DEFAULT_SAMPLE_FRAMES = 32
DEFAULT_MAX_TRACEBACKS = 16384
ROWS_PER_CHUNK = 256  # rows built per call into the extension when a snapshot is read

Row = tuple  # (frames, live_bytes, live_count, live_samples, total_bytes, total_count, total_samples)


def _module() -> tuple[Any, str | None]:
    if not (3, 11) <= sys.version_info[:2] <= (3, 13):
        return None, f"Python {sys.version.split()[0]} is not supported (3.11-3.13)"
    try:
        from . import _memsoak_sampler as module  # type: ignore[attr-defined]
    except ImportError as error:
        return None, (f"the C extension is not built ({error}); build it with "
                      "`python setup.py build_ext --inplace` or reinstall memsoak with a C compiler")
    if not module.supported():
        return None, "the C extension was built without frame support for this Python"
    return module, None


def available() -> str | None:
    """None when sampling can start here, else the reason it cannot."""
    return _module()[1]


def start(sample_bytes: int = DEFAULT_SAMPLE_BYTES, frames: int = DEFAULT_SAMPLE_FRAMES,
          max_tracebacks: int = DEFAULT_MAX_TRACEBACKS) -> str | None:
    """Start sampling (a no-op when already running, e.g. in a forked child); None or the reason."""
    module, reason = _module()
    if module is None:
        return reason
    if module.running():
        return None
    try:
        module.start(sample_bytes=float(sample_bytes), max_frames=int(frames),
                     max_tracebacks=int(max_tracebacks))
    except (RuntimeError, ValueError, MemoryError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def stop() -> None:
    module, _reason = _module()
    if module is not None and module.running():
        module.stop()


def running() -> bool:
    module, _reason = _module()
    return bool(module is not None and module.running())


def stats() -> dict[str, Any] | None:
    module, _reason = _module()
    return module.stats() if module is not None else None


def live_bytes() -> int | None:
    """The estimated live bytes of every sampled block (None when not sampling): O(1)."""
    module, _reason = _module()
    return module.live_bytes() if module is not None else None


def iter_rows(only_live: bool = True) -> Iterator[Row]:
    """One row per sampled traceback (see the extension's snapshot()), built ROWS_PER_CHUNK at a
    time: a consumer that folds them as they come (a snapshot does) never holds every row at once,
    which keeps the snapshot's transient heap, and so the engine's RSS step, small."""
    module, _reason = _module()
    if module is None or not module.running():
        return
    copy, count = module.snapshot_copy(only_live)  # consistent, taken without Python allocation
    for start in range(0, count, ROWS_PER_CHUNK):  # the GIL can change hands between chunks
        yield from module.snapshot_rows(copy, start, start + ROWS_PER_CHUNK)


def rows(only_live: bool = True) -> list[Row]:
    """Every row at once; [] when not sampling."""
    return list(iter_rows(only_live))
