"""Joining a hook SAMPLE with Locust's stats at that moment into a ROW (docs/CONTRACTS.md).

On a master the stats are the workers' aggregate; current RPS and percentiles are Locust's own
sliding-window figures, so a row shows the load the engine was under when it was sampled.
"""
from __future__ import annotations

import re
from typing import Any, cast

from locust.stats import StatsError

from memsoak.contract import LoadSide, RequestStats, Row, Sample
from memsoak.ops import count_ops


def load_side(runner: Any) -> LoadSide:
    """The load columns of a row, read from the runner's stats now."""
    stats = runner.stats
    total = stats.total

    def percentile(p: float) -> float | None:
        value = total.get_current_response_time_percentile(p)
        return round(float(value), 3) if value is not None else None

    requests_by_name: dict[str, int] = {}
    failures_by_name: dict[str, int] = {}
    successes: dict[tuple[str, str], int] = {}
    for (name, method), entry in list(stats.entries.items()):
        key = f"{method} {name}"
        requests_by_name[key] = entry.num_requests
        failures_by_name[key] = entry.num_failures
        successes[(method, name)] = entry.num_requests - entry.num_failures
    return {
        "users": runner.user_count,
        "rps": round(float(total.current_rps), 3),
        "fail_per_s": round(float(total.current_fail_per_sec), 3),
        "p50_ms": percentile(0.5),
        "p95_ms": percentile(0.95),
        "p99_ms": percentile(0.99),
        "requests_total": total.num_requests,
        "failures_total": total.num_failures,
        "requests_by_name": requests_by_name,
        "failures_by_name": failures_by_name,
        "ops": count_ops(successes),
    }


def join(samples: list[Sample], load: LoadSide, now_t: float) -> list[Row]:
    """Rows for a batch of samples fetched at harness time `now_t` (seconds since test start).

    The newest sample is taken as "now"; older ones in the batch are placed back by the engine's own
    monotonic spacing, so `t` stays on the harness clock without assuming the two clocks agree.
    """
    if not samples:
        return []
    newest = samples[-1].get("t_mono")
    rows: list[Row] = []
    for sample in samples:
        t_mono = sample.get("t_mono")
        lag = (newest - t_mono) if isinstance(newest, (int, float)) and isinstance(t_mono, (int, float)) else 0.0
        rows.append(cast(Row, {**sample, "t": round(now_t - lag, 3), **load}))
    return rows


_WRAPPED = re.compile(r"""^(?:CatchResponseError|Exception)\((['"])(?P<text>.*)\1\)$""")


def error_text(error: Any) -> str:
    """Locust's error name without the wrapper our own messages get (CatchResponseError('...'))."""
    text = StatsError.parse_error(error)
    match = _WRAPPED.match(text)
    return match.group("text") if match else text


def requests_table(stats: Any) -> list[RequestStats]:
    """Locust's per-name table for requests.json."""
    table: list[RequestStats] = []
    for (name, method), entry in sorted(stats.entries.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        failures: dict[str, int] = {}
        for error in stats.errors.values():
            if error.name == name and error.method == method:
                text = error_text(error.error)
                failures[text] = failures.get(text, 0) + error.occurrences
        table.append({
            "method": method, "name": name,
            "num_requests": entry.num_requests, "num_failures": entry.num_failures,
            "median_ms": entry.median_response_time, "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99), "avg_ms": round(entry.avg_response_time, 3),
            "rps": round(entry.total_rps, 3), "failures": failures,
        })
    return table
