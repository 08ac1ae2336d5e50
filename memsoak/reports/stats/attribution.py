"""Where the growth comes from: tracemalloc sites, gc object types, memray files, resources.

Snapshot diffs arrive as intervals (warm-up end -> checkpoint -> ... -> final). A site that grows
in every consecutive interval is a suspect; one that grew once is not (the rule CPython's refleak
hunter uses). Sites are ranked by that consistency first, then by total growth. Frames of the hook
itself (`memsoak/profiler/`) are dropped from tracebacks: they are the measurement, not the engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOOK_FRAME_MARKERS = ("memsoak/profiler/", "memsoak\\profiler\\")


@dataclass
class Suspect:
    key: str                   # "file:line" or the type name
    growth: float              # bytes (sites) or objects (types) over the covered intervals
    count_growth: float
    intervals_grown: int
    intervals: int
    consistent: bool           # grew in every interval (and there were at least two)
    traceback: list[str] = field(default_factory=list)
    engine_frame: str | None = None   # first frame outside the stdlib and installed packages


LIBRARY_MARKERS = ("site-packages", "dist-packages", "/lib/python3", "\\lib\\python3", "<frozen ")


def engine_frame(frames: list[str], engine: tuple[str, ...] = ()) -> str | None:
    """The innermost frame in the engine's own code: json/decoder.py is where a block was
    allocated, the engine line that called json.loads is what a developer fixes. `engine`: the
    engine's own top-level packages (the hook's /health engine_packages), which count as the
    engine's code even when installed in site-packages."""
    return next((f for f in frames if not _is_library(f, engine)), None)


def _is_hook(frame: str) -> bool:
    return any(marker in frame for marker in HOOK_FRAME_MARKERS)


def chain(diffs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Consecutive intervals (head of one is base of the next) and the widest single diff."""
    if not diffs:
        return [], None
    ordered = sorted(diffs, key=lambda d: (str(d.get("base_taken_at", "")), str(d.get("head_taken_at", ""))))
    by_base: dict[str, list[dict[str, Any]]] = {}
    for diff in ordered:
        by_base.setdefault(str(diff.get("base")), []).append(diff)
    heads = {str(d.get("head")) for d in ordered}
    best: list[dict[str, Any]] = []
    for start in [d for d in ordered if str(d.get("base")) not in heads] or ordered[:1]:
        path = [start]
        seen = {str(start.get("base"))}
        while True:
            nxt = [d for d in by_base.get(str(path[-1].get("head")), []) if str(d.get("head")) not in seen]
            if not nxt:
                break
            seen.add(str(path[-1].get("head")))
            path.append(nxt[0])
        if len(path) > len(best):
            best = path
    widest = max(ordered, key=lambda d: abs(float(d.get("total_size_diff") or 0)))
    return best, widest


def _is_library(frame: str, engine: tuple[str, ...] = ()) -> bool:
    path = frame.replace("\\", "/")
    if any(f"-packages/{package}/" in path or f"-packages/{package}.py" in path for package in engine):
        return False
    return any(m in frame for m in LIBRARY_MARKERS)


def rank_sites(diffs: list[dict[str, Any]], top_n: int, engine: tuple[str, ...] = ()) -> list[Suspect]:
    """Sites ranked by consistency across intervals, then growth.

    A site whose innermost frame is in the standard library or an installed package (logging,
    functools, json, a driver) is counted under the engine's calling line when its traceback
    reaches one (tracemalloc with more than one frame): that is the line a developer fixes, and the
    many library lines one engine call allocates on add up there. Its traceback still shows the
    library frames first. `engine`: the engine's own packages, never library code (see
    engine_frame). An engine line with no library frame outside it is the program's root (the
    script that calls `uvicorn.run`), not a line a framework called: a stack whose only engine
    frames are there keeps its library line.
    """
    intervals, widest = chain(diffs)
    if len(intervals) < 2 and widest is not None:
        intervals = [widest]
    table: dict[str, Suspect] = {}
    for diff in intervals:
        depth = int(diff.get("traceback_frames") or 10**6)   # a stack this deep may be cut short
        seen: set[str] = set()
        grouped: dict[str, list[Any]] = {}   # key -> [size_diff, count_diff, traceback, best size_diff]
        for site in list(diff.get("by_size") or []) + list(diff.get("by_count") or []):
            file = str(site.get("file", "?"))
            if _is_hook(file):
                continue
            line_key = f"{file}:{site.get('line', 0)}"
            if line_key in seen:
                continue
            seen.add(line_key)
            frames = [str(f) for f in site.get("traceback") or [] if not _is_hook(str(f))] or [line_key]
            caller = engine_frame(frames, engine)
            if caller is not None and len(frames) < depth and not any(
                    _is_library(f, engine) for f in frames[frames.index(caller) + 1:]):
                # No library frame outside it: the engine line is the program's root (the script's
                # `uvicorn.run(app)`), not a handler a framework called. Every allocation of the
                # server and its event loop would add up there, above the engine's own lines (an
                # exc_keep run: 90 MB at the root); the library line says more.
                caller = None
            key = caller if _is_library(line_key, engine) and caller else line_key
            size = float(site.get("size_diff") or 0)
            entry = grouped.setdefault(key, [0.0, 0.0, frames, -float("inf")])
            entry[0] += size
            entry[1] += float(site.get("count_diff") or 0)
            if size > entry[3]:
                entry[2], entry[3] = frames, size
        for key, (size, count, frames, _best) in grouped.items():
            entry = table.setdefault(key, Suspect(key, 0.0, 0.0, 0, len(intervals), False))
            entry.growth += size
            entry.count_growth += count
            entry.intervals_grown += 1 if size > 0 else 0
            if not entry.traceback:
                entry.traceback = frames
                entry.engine_frame = engine_frame(frames, engine)
    return _ranked(table, top_n)


def _ranked(table: dict[str, Suspect], top_n: int) -> list[Suspect]:
    """The growing entries, those that grew in every interval first, then by share of intervals and growth."""
    for entry in table.values():
        entry.consistent = entry.intervals >= 2 and entry.intervals_grown == entry.intervals
    ranked = sorted(table.values(),
                    key=lambda s: (s.consistent, s.intervals_grown / max(s.intervals, 1), s.growth),
                    reverse=True)
    return [s for s in ranked if s.growth > 0][:top_n]


def rank_types(type_diffs: list[dict[str, Any]], top_n: int) -> list[Suspect]:
    intervals, widest = chain(type_diffs)
    if len(intervals) < 2 and widest is not None:
        intervals = [widest]
    table: dict[str, Suspect] = {}
    for diff in intervals:
        for row in diff.get("by_type") or []:
            key = str(row.get("type", "?"))
            entry = table.setdefault(key, Suspect(key, 0.0, 0.0, 0, len(intervals), False))
            grown = float(row.get("count_diff") or 0)
            entry.growth += grown
            entry.count_growth += grown
            entry.intervals_grown += 1 if grown > 0 else 0
    return _ranked(table, top_n)


@dataclass(frozen=True)
class NetGrowth:
    """The traced heap's net growth between two snapshots, from their diff(s)."""
    total_bytes: float
    base: str
    head: str
    base_t: float | None       # harness seconds of the base and head snapshots, when known
    head_t: float | None

    def covers(self, start_s: float, end_s: float, tolerance_s: float) -> bool:
        """Whether the snapshots bracket [start_s, end_s] (within tolerance_s at either end)."""
        return (self.base_t is not None and self.head_t is not None
                and self.base_t <= start_s + tolerance_s and self.head_t >= end_s - tolerance_s)

    def describe(self) -> str:
        return f"tracemalloc {self.base} -> {self.head} net {self.total_bytes / 1024:+.0f} KB"


def _snapshot_t(label: str, taken_at: Any, label_t: dict[str, float], wall0: float | None) -> float | None:
    if label in label_t:
        return label_t[label]
    if wall0 is not None and isinstance(taken_at, (int, float)):
        return float(taken_at) - wall0
    return None


def net_growth(diffs: list[dict[str, Any]], label_t: dict[str, float],
               wall0: float | None = None) -> NetGrowth | None:
    """Live-heap growth over the widest span the diffs cover: the chain of consecutive intervals
    summed (baseline -> checkpoint -> final) or one diff, whichever spans longer. A snapshot's
    traces are copied at one moment of the engine's garbage cycle, not the series' saw-tooth, so
    garbage waiting for a full collection weighs alike at both ends. `label_t` maps snapshot labels
    to harness seconds (the `snapshot` events); `wall0` is the wall clock of t = 0, a fallback."""
    if not diffs:
        return None
    intervals, _ = chain(diffs)
    candidates = [intervals] if intervals else []
    candidates += [[d] for d in diffs if not (len(intervals) == 1 and d is intervals[0])]
    found = []
    for path in candidates:
        base, head = str(path[0].get("base")), str(path[-1].get("head"))
        found.append(NetGrowth(sum(float(d.get("total_size_diff") or 0) for d in path), base, head,
                               _snapshot_t(base, path[0].get("base_taken_at"), label_t, wall0),
                               _snapshot_t(head, path[-1].get("head_taken_at"), label_t, wall0)))
    timed = [g for g in found if g.base_t is not None and g.head_t is not None]
    if not timed:
        return found[0]
    return max(timed, key=lambda g: g.head_t - g.base_t)


RESOURCE_KEYS = {"open_fds": "fd_targets", "threads": "thread_names", "asyncio_tasks": "task_names"}


def resource_growth(rows: list[dict[str, Any]], top_n: int) -> dict[str, list[tuple[str, float]]]:
    """Named growth of fds / threads / tasks, when rows carry per-name counts (optional keys)."""
    named: dict[str, list[tuple[str, float]]] = {}
    for signal, key in RESOURCE_KEYS.items():
        having = [row[key] for row in rows if isinstance(row.get(key), dict)]
        if len(having) < 2:
            continue
        first, last = having[0], having[-1]
        growth = {name: float(last.get(name, 0)) - float(first.get(name, 0)) for name in set(first) | set(last)}
        named[signal] = sorted(((n, g) for n, g in growth.items() if g > 0), key=lambda p: -p[1])[:top_n]
    return named


MEMRAY_NOTE = ("memray sees pymalloc arenas as native leaks unless the engine ran with "
               "PYTHONMALLOC=malloc or memray's --trace-python-allocators")
