"""Allocation snapshots and gc type censuses by label, and their diffs, computed in the engine.

A snapshot comes from one of two sources, chosen per run (HookConfig.alloc_mode): `sampled` reads
the live table of the sampled allocation tracker (memsoak/profiler/alloc_sampler.py; estimated bytes and
blocks per full Python stack, no copy of the heap and no RSS step), `tracemalloc` takes a
tracemalloc snapshot (exact; starts tracing at 1 frame when needed). Both are reduced to the same
{frames: [size, count]} summary, so stores, diffs and their shapes are the same for both.

Only the top N sites cross the wire. The hook's own allocations are dropped twice: every trace with
a frame in this package or in tracemalloc.py is left out of the stored summary (stored summaries
are themselves traced memory), and tracebacks shown to the user have those frames removed.
A SITE is one innermost file:line; its traceback is the one call path that grew most there.
Stores are bounded (the first label ever taken is kept, beyond that the oldest goes first) and live
on disk, so that between requests the hook holds nothing in the engine's traced heap.
"""
from __future__ import annotations

import collections
import gc
import itertools
import marshal
import os
import shutil
import tempfile
import threading
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import tracemalloc  # imported when a tracemalloc snapshot is taken: never in sampled mode

from . import alloc_sampler
from .config import DEFAULT_SAMPLE_FRAMES, DEFAULT_SNAPSHOT_FRAMES

MAX_LABELS = 32
_HOOK_DIR = os.path.dirname(os.path.abspath(__file__))


class UnknownLabel(KeyError):
    def __init__(self, kind: str, label: str, route: str) -> None:
        super().__init__(f"no {kind} labelled {label!r}: take it first with POST {route}/{label}")
        self.message = self.args[0]


def _is_hidden(filename: str) -> bool:
    return filename.startswith(_HOOK_DIR + os.sep) or filename == _TRACEMALLOC_FILE


_TRACEMALLOC_FILE = os.path.join(os.path.dirname(os.__file__), "tracemalloc.py")


class _BoundedStore:
    """Labelled items kept on disk (marshal), not in the engine's heap.

    While tracemalloc traces, anything the hook keeps in memory is counted in the engine's traced
    heap: a summary per label (tens of KB to MBs) would show up as a step of "Python heap growth" at
    every checkpoint. On disk they cost the engine nothing between requests. The directory is
    created on first use (under the peer directory when memsoak-run gave one, so it goes with it)
    and removed by `close()`.
    """

    def __init__(self, kind: str, parent_dir: str | None = None) -> None:
        self._kind = kind
        self._parent_dir = parent_dir
        self._dir: str | None = None
        self._items: dict[str, tuple[float, str]] = {}
        self._first: str | None = None
        self._written = 0
        self._lock = threading.Lock()

    def _path(self) -> str:
        if self._dir is None:
            parent = self._parent_dir if self._parent_dir and os.path.isdir(self._parent_dir) else None
            self._dir = tempfile.mkdtemp(prefix=f"memsoak-{self._kind}-{os.getpid()}-", dir=parent)
        self._written += 1
        return os.path.join(self._dir, f"{self._written}.marshal")

    def put(self, label: str, taken_at: float, item: Any) -> None:
        with self._lock:
            path = self._path()
            with open(path, "wb") as handle:
                marshal.dump(item, handle)
            self._drop(label)
            self._items[label] = (taken_at, path)
            if self._first is None:
                self._first = label
            while len(self._items) > MAX_LABELS:
                self._drop(next(key for key in self._items if key != self._first))

    def _drop(self, label: str) -> None:
        old = self._items.pop(label, None)
        if old is not None:
            try:
                os.unlink(old[1])
            except OSError:
                pass

    def get(self, label: str) -> tuple[float, Any] | None:
        with self._lock:
            found = self._items.get(label)
            if found is None:
                return None
            with open(found[1], "rb") as handle:
                return found[0], marshal.load(handle)

    def labels(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._items.clear()


Frames = tuple  # ((filename, lineno), ...) innermost first, as tracemalloc stores them


def _raw_traces(snapshot: tracemalloc.Snapshot) -> list[tuple[Any, ...]]:
    """Traces as tuples (domain, size, frames innermost first, ...), raw when available.

    tracemalloc.Snapshot keeps its traces as such tuples in `traces._traces` (since 3.6; what its
    own Python code reads). Reading them directly avoids a Trace and a Traceback object per block.
    """
    raw = getattr(getattr(snapshot, "traces", None), "_traces", None)
    if isinstance(raw, list):
        return raw
    return [(0, trace.size, tuple((f.filename, f.lineno) for f in reversed(trace.traceback)))
            for trace in snapshot.traces]  # public fallback: Traceback is oldest first


def group_by_traceback(snapshot: tracemalloc.Snapshot) -> dict[Frames, list[int]]:
    """{frames: [size, count]} with every trace touching the hook (or tracemalloc.py) dropped.

    Done with sorted() and itertools.groupby so the per-trace work stays in C: while tracemalloc
    traces, every int or object a Python loop creates is itself traced, and a per-trace Python loop
    over 1.25 M traces took ~5 s (filter_traces + compare_to: ~30 s); this takes ~0.2 s.
    Only this summary is stored per label, never the snapshot: a snapshot of a big heap holds one
    tuple per live block (~100 MB per million), the summary one entry per distinct traceback.
    """
    by_frames = itemgetter(2)
    hidden: dict[str, bool] = {}
    grouped: dict[Frames, list[int]] = {}
    for frames, traces in itertools.groupby(sorted(_raw_traces(snapshot), key=by_frames), key=by_frames):
        if any(hidden.setdefault(name, _is_hidden(name)) for name, _line in frames):
            continue
        members = list(traces)
        grouped[frames] = [sum(map(itemgetter(1), members)), len(members)]
    return grouped


def group_sampled(rows: Iterable[tuple[Any, ...]]) -> dict[Frames, list[int]]:
    """{frames: [estimated live bytes, estimated live blocks]} from the sampler's rows.

    The tracker interns stacks by the identity of each code object's filename, so two rows can
    hold equal frames: they are merged here. Rows with a frame of the hook are dropped, as above.
    """
    hidden: dict[str, bool] = {}

    def is_hidden(name: str) -> bool:
        found = hidden.get(name)
        if found is None:
            found = hidden[name] = _is_hidden(name)
        return found

    grouped: dict[Frames, list[int]] = {}
    for frames, live_bytes, live_count, *_rest in rows:
        if not live_bytes or any(is_hidden(name) for name, _line in frames):
            continue
        entry = grouped.setdefault(frames, [0, 0])
        entry[0] += live_bytes
        entry[1] += live_count
    return grouped


class AllocTrackingOff(Exception):
    """POST /snapshots when the run asked for no allocation tracking (the server answers 409)."""

    status = 409

    def __init__(self) -> None:
        super().__init__("allocation snapshots are off in this run (MEMSOAK_ALLOC_MODE=off): "
                         "start the engine with MEMSOAK_ALLOC_MODE=sampled or tracemalloc")
        self.message = self.args[0]


def trim_native_heap() -> bool:
    """Give glibc's free heap back to the OS (malloc_trim(0)); False where there is no glibc.

    Taking a snapshot copies tracemalloc's trace table in C and builds a tuple per live block; once
    freed, glibc keeps that memory. Measured: 400 k traced blocks, RSS 169 -> 257 MB after the
    snapshot, 179 MB after malloc_trim. Without the trim the first snapshot (the harness's baseline,
    at warm-up end) would put a step into the RSS series right where the analysis starts.
    """
    try:
        import ctypes  # lazily: only processes that take snapshots pay for it

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except Exception:
        return False


class SnapshotStore:
    """Snapshots by label from `source`: "tracemalloc" (default), "sampled" or "off"."""

    def __init__(self, parent_dir: str | None = None, trim: bool = True, source: str = "tracemalloc",
                 sample_frames: int = DEFAULT_SAMPLE_FRAMES) -> None:
        self._store = _BoundedStore("snapshots", parent_dir)
        self._trim = trim
        self.source = source
        self._sample_frames = sample_frames

    def close(self) -> None:
        self._store.close()

    def take(self, label: str) -> dict[str, Any]:
        if self.source == "off":
            raise AllocTrackingOff()
        if self.source == "sampled":
            return self._take_sampled(label)
        import tracemalloc
        started = False
        if not tracemalloc.is_tracing():
            tracemalloc.start(DEFAULT_SNAPSHOT_FRAMES)
            started = True
        snapshot = tracemalloc.take_snapshot()
        frames_limit = snapshot.traceback_limit
        grouped = group_by_traceback(snapshot)
        del snapshot  # the summary is all we keep
        if self._trim:
            trim_native_heap()
        current, peak = tracemalloc.get_traced_memory()
        taken_at = time.time()
        self._store.put(label, taken_at, (frames_limit, list(grouped.items())))
        answer: dict[str, Any] = {"label": label, "taken_at": taken_at,
                                  "traced_current_bytes": current, "traced_peak_bytes": peak,
                                  "traceback_frames": frames_limit}
        if started:
            answer["tracing_started"] = True
        answer["source"] = "tracemalloc"
        return answer

    def _take_sampled(self, label: str) -> dict[str, Any]:
        """A read of the tracker's live table: no heap copy, no malloc_trim, nothing kept in memory."""
        if not alloc_sampler.running():
            raise RuntimeError("the allocation sampler is not running (it failed or was stopped): "
                               "see /health alloc_sampler")
        grouped = group_sampled(alloc_sampler.iter_rows(only_live=True))
        taken_at = time.time()
        self._store.put(label, taken_at, (self._sample_frames, list(grouped.items())))
        stats = alloc_sampler.stats() or {}
        return {"label": label, "taken_at": taken_at,
                "traced_current_bytes": sum(size for size, _count in grouped.values()),
                "traced_peak_bytes": None, "traceback_frames": self._sample_frames,
                "source": "sampled", "sample_bytes": int(stats.get("sample_bytes", 0)),
                "samples_live": stats.get("live_samples")}

    def labels(self) -> list[str]:
        return self._store.labels()

    def diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        found = {}
        for label in (base, head):
            item = self._store.get(label)
            if item is None:
                raise UnknownLabel("snapshot", label, "/snapshots")
            found[label] = item
        (base_at, (_limit, before)), (head_at, (frames_limit, after)) = found[base], found[head]
        before, after = dict(before), dict(after)  # stored as (frames, [size, count]) pairs
        sites: dict[tuple[str, int], dict[str, Any]] = {}
        best_growth: dict[tuple[str, int], int] = {}
        for frames in set(before) | set(after):
            size, count = after.get(frames, (0, 0))
            old_size, old_count = before.get(frames, (0, 0))
            shown = [frame for frame in frames if not _is_hidden(frame[0])]
            if not shown or (size == old_size and count == old_count):
                continue
            key = shown[0]
            site = sites.setdefault(key, {"file": key[0], "line": key[1], "size_diff": 0,
                                          "count_diff": 0, "size": 0, "count": 0, "traceback": []})
            site["size_diff"] += size - old_size
            site["count_diff"] += count - old_count
            site["size"] += size
            site["count"] += count
            if key not in best_growth or size - old_size > best_growth[key]:
                best_growth[key] = size - old_size
                site["traceback"] = [f"{name}:{line}" for name, line in shown]
        ranked = list(sites.values())
        return {
            "base": base, "head": head, "base_taken_at": base_at, "head_taken_at": head_at,
            "traceback_frames": frames_limit, "source": self.source,
            "total_size_diff": sum(site["size_diff"] for site in ranked),
            "total_count_diff": sum(site["count_diff"] for site in ranked),
            "by_size": sorted(ranked, key=lambda s: s["size_diff"], reverse=True)[:top],
            "by_count": sorted(ranked, key=lambda s: s["count_diff"], reverse=True)[:top],
        }


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", None)
    if module in (None, "builtins"):
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def type_census() -> dict[str, int]:
    """Objects tracked by the gc (containers: not str/int/float) counted by type.

    gc.get_objects() and the C-level Counter hold the GIL throughout: on a heap of ~1.5 M objects
    this pauses the engine for a few hundred ms, so it runs only on request.
    """
    counts = collections.Counter(map(type, gc.get_objects()))
    return {_type_name(kind): count for kind, count in counts.items()}


class TypeCensusStore:
    def __init__(self, parent_dir: str | None = None) -> None:
        self._store = _BoundedStore("types", parent_dir)

    def close(self) -> None:
        self._store.close()

    def take(self, label: str) -> dict[str, Any]:
        census = type_census()
        taken_at = time.time()
        self._store.put(label, taken_at, census)
        return {"label": label, "taken_at": taken_at, "objects": sum(census.values())}

    def labels(self) -> list[str]:
        return self._store.labels()

    @staticmethod
    def current(top: int) -> dict[str, Any]:
        census = type_census()
        ranked = sorted(census.items(), key=lambda item: item[1], reverse=True)[:top]
        return {"objects": sum(census.values()),
                "by_type": [{"type": name, "count": count} for name, count in ranked]}

    def diff(self, base: str, head: str, top: int) -> dict[str, Any]:
        censuses = {}
        for label in (base, head):
            item = self._store.get(label)
            if item is None:
                raise UnknownLabel("type census", label, "/types")
            censuses[label] = item
        (base_at, before), (head_at, after) = censuses[base], censuses[head]
        rows = [{"type": name, "count": after.get(name, 0),
                 "count_diff": after.get(name, 0) - before.get(name, 0)}
                for name in set(before) | set(after)]
        rows.sort(key=lambda row: row["count_diff"], reverse=True)
        return {"base": base, "head": head, "base_taken_at": base_at, "head_taken_at": head_at,
                "objects_diff": sum(after.values()) - sum(before.values()), "by_type": rows[:top]}
