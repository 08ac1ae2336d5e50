"""Where the growth comes from: tracemalloc sites, gc object types, memray files, resources.

Snapshot diffs arrive as intervals (warm-up end -> checkpoint -> ... -> final). A site that grows
in every consecutive interval is a suspect; one that grew once is not (the rule CPython's refleak
hunter uses). Sites are ranked by that consistency first, then by total growth. Frames of the hook
itself (`profiler/`) are dropped from tracebacks: they are the measurement, not the engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOOK_FRAME_MARKERS = ("profiler/", "profiler\\")


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


def engine_frame(frames: list[str]) -> str | None:
    """The innermost frame in the engine's own code: json/decoder.py is where a block was
    allocated, the engine line that called json.loads is what a developer fixes."""
    return next((f for f in frames if not any(m in f for m in LIBRARY_MARKERS)), None)


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


def rank_sites(diffs: list[dict[str, Any]], top_n: int) -> list[Suspect]:
    intervals, widest = chain(diffs)
    if len(intervals) < 2 and widest is not None:
        intervals = [widest]
    table: dict[str, Suspect] = {}
    for diff in intervals:
        seen: set[str] = set()
        for site in list(diff.get("by_size") or []) + list(diff.get("by_count") or []):
            file = str(site.get("file", "?"))
            if _is_hook(file):
                continue
            key = f"{file}:{site.get('line', 0)}"
            if key in seen:
                continue
            seen.add(key)
            entry = table.setdefault(key, Suspect(key, 0.0, 0.0, 0, len(intervals), False))
            entry.growth += float(site.get("size_diff") or 0)
            entry.count_growth += float(site.get("count_diff") or 0)
            entry.intervals_grown += 1 if float(site.get("size_diff") or 0) > 0 else 0
            if not entry.traceback:
                entry.traceback = [str(f) for f in site.get("traceback") or [] if not _is_hook(str(f))]
                entry.engine_frame = engine_frame(entry.traceback or [key])
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
    for entry in table.values():
        entry.consistent = entry.intervals >= 2 and entry.intervals_grown == entry.intervals
    ranked = sorted(table.values(),
                    key=lambda s: (s.consistent, s.intervals_grown / max(s.intervals, 1), s.growth),
                    reverse=True)
    return [s for s in ranked if s.growth > 0][:top_n]


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
