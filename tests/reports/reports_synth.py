"""Synthetic series and run directories for the reports tests (and bench/verdict_synthetic.py).

Families: white noise, AR(1) noise (phi ~ 0.99), allocator steps, GC saw-teeth, a bounded cache
that plateaus, and any of them plus a planted slope. Rows follow docs/CONTRACTS.md's ROW schema.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

MB = 1024 * 1024
FAMILIES = ("white", "ar1", "steps", "sawtooth", "plateau")
# Beyond the five: the bounded cache under AR(1) noise instead of white noise, where the
# noise hides how much of the fill is left after the warm-up cut (measured in the bench only).
EXTRA_FAMILIES = ("plateau_ar1",)
# Issue 9's clean families: a container that resizes in power-of-two steps up to its bound, then
# holds (a bounded dict or list: 0.5, 1, 2, 4 MB tables), under AR(1) noise.
CLEAN_STAIRS = ("stairs_bounded",)
# Issue 9's leak families: growth that follows random traffic (a random walk with drift) under three
# noises, and a leak held in a container that resizes in power-of-two steps.
#   rw_white: per-5 s traffic gamma-distributed (shape 2) around its mean, white noise sd 0.5 MB;
#   rw_ar1:   the same walk under the AR(1) noise (phi 0.99, innovations 0.15 MB);
#   rw_bursty: bursty traffic (gamma shape 0.2, most intervals nearly idle) and little noise (0.05 MB);
#   stairs:   half the growth in the items, half in a pointer table doubling when full, white noise.
LEAK_FAMILIES = ("rw_white", "rw_ar1", "rw_bursty", "stairs")


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    shocks = rng.normal(0.0, sd, n)
    start = rng.normal(0.0, sd / np.sqrt(1 - phi * phi))
    return signal.lfilter([1.0], [1.0, -phi], shocks, zi=[phi * start])[0]


def clean(family: str, rng: np.random.Generator, t_s: np.ndarray) -> np.ndarray:
    """A clean (leak-free) memory series in MB around 200 MB."""
    n = len(t_s)
    if family == "white":
        noise = rng.normal(0, 0.5, n)
    elif family == "ar1":
        noise = ar1(rng, n, 0.99, 0.15)
    elif family == "steps":
        # Arenas taken and given back: the level jumps to a random height in [0, 8] MB at random
        # times (one jump per 10 minutes on average at 5 s sampling), then holds.
        jumps = np.cumsum(rng.random(n) < (t_s[1] - t_s[0]) / 600.0 if n > 1 else np.zeros(n, bool))
        heights = rng.uniform(0.0, 8.0, size=int(jumps[-1]) + 1 if n else 1)
        noise = heights[jumps] + rng.normal(0, 0.2, n)
    elif family == "sawtooth":
        period = 120.0
        noise = 3.0 * ((t_s + rng.uniform(0, period)) % period) / period + rng.normal(0, 0.3, n)
    elif family == "plateau":
        # A bounded cache: 60 MB filling with a 10-minute time constant, then flat.
        noise = 60.0 * (1 - np.exp(-t_s / 600.0)) + rng.normal(0, 0.5, n)
    elif family == "plateau_ar1":
        noise = 60.0 * (1 - np.exp(-t_s / 600.0)) + ar1(rng, n, 0.99, 0.15)
    elif family == "stairs_bounded":
        # Items arrive at a random pace until the bound (8 MB of table at ~40 min), the table
        # doubling 0.5 -> 1 -> 2 -> 4 -> 8 MB when full; then it holds.
        items = np.minimum(np.cumsum(rng.gamma(2.0, 0.5, n)) / n * 6.0, 1.0)   # share of the bound
        table = np.where(items > 0, 8.0 * 2.0 ** np.ceil(np.log2(np.maximum(items, 1 / 16))), 0.0)
        noise = table + ar1(rng, n, 0.99, 0.15)
    else:
        raise ValueError(family)
    return 200.0 + noise


def leaky(family: str, rng: np.random.Generator, t_s: np.ndarray, rate_mb_h: float) -> np.ndarray:
    """A leak family of issue 9 (LEAK_FAMILIES) at a mean rate, in MB around 200 MB."""
    n = len(t_s)
    dt_h = float(t_s[1] - t_s[0]) / 3600.0 if n > 1 else 0.0
    shape = {"rw_white": 2.0, "rw_ar1": 2.0, "rw_bursty": 0.2, "stairs": 2.0}[family]
    traffic = rng.gamma(shape, 1.0 / shape, n)             # mean 1: per-interval operations / mean
    walk = np.cumsum(traffic) * rate_mb_h * dt_h            # the leak follows cumulative operations
    if family == "rw_white":
        return 200.0 + walk + rng.normal(0, 0.5, n)
    if family == "rw_ar1":
        return 200.0 + walk + ar1(rng, n, 0.99, 0.15)
    if family == "rw_bursty":
        return 200.0 + walk + rng.normal(0, 0.05, n)
    if family == "stairs":
        half = walk / 2.0
        table = np.where(half > 0, 2.0 ** np.ceil(np.log2(np.maximum(half, 1e-3))), 0.0)
        table = np.maximum(table, 0.0625)   # the table's first allocation, 64 KB
        return 200.0 + half + table + rng.normal(0, 0.5, n)
    raise ValueError(family)


def make_rows(t_s: np.ndarray, rss_mb: np.ndarray, *, heap_mb: np.ndarray | None = None,
              ops: dict[str, np.ndarray] | None = None, fds: np.ndarray | None = None,
              tasks: np.ndarray | None = None, users: np.ndarray | None = None) -> list[dict[str, Any]]:
    rows = []
    n = len(t_s)
    ops = ops or {"messages": np.arange(n) * 10.0, "sessions_created": np.arange(n) * 2.0}
    for i in range(n):
        op_now = {name: int(values[i]) for name, values in ops.items()}
        requests = int(sum(op_now.values()))
        rows.append({
            "seq": i + 1, "t_mono": 1000.0 + float(t_s[i]), "t_wall": 1.7e9 + float(t_s[i]), "pid": 4242,
            "rss_bytes": int(rss_mb[i] * MB), "vms_bytes": int((rss_mb[i] + 500) * MB),
            "tree_rss_bytes": None, "tree_procs": 1, "uss_bytes": None,
            "traced_current_bytes": None if heap_mb is None else int(heap_mb[i] * MB),
            "traced_peak_bytes": None if heap_mb is None else int(heap_mb[i] * MB),
            "allocated_blocks": 100000 + (i % 7), "gc_count_0": 5, "gc_count_1": 1, "gc_count_2": 0,
            "gc_collections_0": i, "gc_collections_1": i // 10, "gc_collections_2": i // 100,
            "gc_objects": None, "open_fds": int(fds[i]) if fds is not None else 12,
            "threads": 4, "asyncio_tasks": int(tasks[i]) if tasks is not None else 3,
            "sample_cost_us": 150, "hook_errors": 0,
            "t": float(t_s[i]), "users": float(users[i]) if users is not None else 10.0,
            "rps": 20.0 + (i % 5), "fail_per_s": 0.0, "p50_ms": 20.0, "p95_ms": 45.0 + (i % 3), "p99_ms": 80.0,
            "requests_total": requests, "failures_total": 0,
            "requests_by_name": {"POST /api/engine/chat/sessions/{id}/messages": op_now.get("messages", 0),
                                 "POST /api/engine/chat/sessions": op_now.get("sessions_created", 0)},
            "failures_by_name": {},
            "ops": op_now,
        })
    return rows


def write_run(run_dir: Path, rows: list[dict[str, Any]], *, events: list[dict[str, Any]] | None = None,
              settings: dict[str, Any] | None = None, diffs: dict[str, dict[str, Any]] | None = None,
              requests: list[dict[str, Any]] | None = None, health: dict[str, Any] | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": run_dir.name, "started_at": "2026-11-26T05:00:00Z", "memsoak_version": "0.1.0",
        "locust_version": "2.47", "host": "http://127.0.0.1:8000", "hook_url": "http://127.0.0.1:9477",
        "settings": settings or {}, "health": health or {}, "argv": []}))
    with (run_dir / "series.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    with (run_dir / "events.jsonl").open("w") as handle:
        for event in events or []:
            handle.write(json.dumps(event) + "\n")
    if diffs:
        (run_dir / "snapshots").mkdir(exist_ok=True)
        for name, diff in diffs.items():
            (run_dir / "snapshots" / name).write_text(json.dumps(diff))
    if requests is not None:
        (run_dir / "requests.json").write_text(json.dumps(requests))
    return run_dir


def site(file: str, line: int, size_diff: int, count_diff: int = 1) -> dict[str, Any]:
    return {"file": file, "line": line, "size_diff": size_diff, "count_diff": count_diff,
            "size": abs(size_diff) * 3, "count": abs(count_diff) * 3,
            "traceback": [f"{file}:{line}", "memsoak/profiler/hook.py:10", "memsoak/demo_engine/app.py:99"]}


def diff(base: str, head: str, taken: tuple[str, str], sites: list[dict[str, Any]]) -> dict[str, Any]:
    return {"base": base, "head": head, "base_taken_at": taken[0], "head_taken_at": taken[1],
            "total_size_diff": sum(s["size_diff"] for s in sites),
            "total_count_diff": sum(s["count_diff"] for s in sites),
            "by_size": sorted(sites, key=lambda s: -s["size_diff"]), "by_count": []}
