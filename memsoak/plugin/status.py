"""The status line and the failed-load hints: how a soak is going, while it runs.

Every `--status-interval-s` seconds (default 60; also with `--only-summary`) the master logs one line:
elapsed and remaining time, users, RPS, failure %, the engine's RSS and heap now, the trend so far
(one least-squares line, `reports.live_trend`, over the samples since warm-up ended) and a
provisional verdict: that slope against the report's rate threshold, nothing during warm-up. The
final verdict is the report's own analysis; the line says "provisional" for that reason.
The web UI's Memory tab shows the same line.

Hints name the fix when the load itself fails the way real engines make it fail: the key refused
(401/403, a WebSocket closed with 4401) and sustained rate limiting (429, all users sharing one
client address). Each hint is logged once when it first holds, and again after the verdict.
"""
from __future__ import annotations

import logging
from typing import Any

import gevent

from memsoak import reports
from memsoak.contract import MB, engine_rss
from memsoak.plugin.arguments import baseline_at_s, option

log = logging.getLogger("memsoak")
AUTH_MARKS = ("HTTP 401", "HTTP 403", "WS HTTP 401", "WS HTTP 403", "WS closed 4401", "WS closed 4403")
RATE_MIN_FAILURES = 10       # "sustained": at least this many 429s ...
RATE_MIN_SHARE = 0.01        # ... and at least 1% of all requests
LIMIT_FACTOR = 2.0           # warn when the RSS limit is below this multiple of the starting RSS


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _mb(value: Any) -> str:
    return f"{value / MB:.1f} MB" if isinstance(value, (int, float)) else "n/a"


def _rate(value: Any) -> str:
    return f"{value:+.1f} MB/h" if isinstance(value, (int, float)) else "n/a"


def provisional(options: Any, trend: dict[str, Any], warming: bool) -> str:
    """A cheap verdict so far: the slope after warm-up against the report's rate threshold."""
    if warming:
        return f"warming up until {baseline_at_s(options):.0f} s (memory fills first; no verdict yet)"
    rate = float(option(options, "rate_threshold_mb_per_hour"))
    slopes = {"RSS": trend.get("rss_slope_mb_per_hour"), "heap": trend.get("heap_slope_mb_per_hour")}
    if slopes["RSS"] is None:
        return "not enough samples after warm-up yet"
    growing = [f"{name} {value:+.1f} MB/h" for name, value in slopes.items() if value is not None and value > rate]
    if growing:
        return f"growing ({', '.join(growing)} > {rate:g} MB/h since warm-up)"
    return f"no growth above {rate:g} MB/h since warm-up"


def status_line(environment: Any, soak: Any) -> str:
    """One line: time, load, memory now, trend and a provisional verdict."""
    options = environment.parsed_options
    runner = environment.runner
    elapsed = soak.now() if soak is not None else 0.0
    run_time = getattr(options, "run_time", None)
    left = f", {clock(float(run_time) - elapsed)} left" if run_time else ""
    stats = runner.stats.total
    rows = list(soak.recent) if soak is not None else []
    latest = rows[-1] if rows else {}
    rss = engine_rss(latest)
    warm_up_end = baseline_at_s(options)
    warming = elapsed < warm_up_end
    # the trend of the whole run while warming up, then only since the end of warm-up
    fitted = rows if warming else [r for r in rows if float(r.get("t") or 0.0) >= warm_up_end]
    trend: dict[str, Any] = {}
    if len(fitted) >= 3:
        try:
            trend = reports.live_trend(fitted) or {}
        except Exception as exc:  # the status line must never stop the run
            trend = {"error": type(exc).__name__}
    return (f"memsoak status: {clock(elapsed)} elapsed{left} | {runner.user_count} users | "
            f"{stats.current_rps:.1f} RPS | {100 * stats.fail_ratio:.1f}% failed | "
            f"RSS {_mb(rss)}, heap {_mb(latest.get('traced_current_bytes'))} | "
            f"trend RSS {_rate(trend.get('rss_slope_mb_per_hour'))}, heap "
            f"{_rate(trend.get('heap_slope_mb_per_hour'))} | provisional: {provisional(options, trend, warming)}")


def hints(environment: Any) -> dict[str, str]:
    """What the failures so far say about the load itself, each with its fix, by kind."""
    options = environment.parsed_options
    stats = environment.runner.stats
    auth = rate = 0
    for error in stats.errors.values():
        text = str(error.error)
        if any(mark in text for mark in AUTH_MARKS):
            auth += error.occurrences
        if "HTTP 429" in text:
            rate += error.occurrences
    out: dict[str, str] = {}
    if auth:
        header = getattr(options, "api_key_header", "X-API-Key")
        out["auth"] = (f"memsoak hint: {auth} requests were refused as unauthorized (401/403, or a WebSocket "
                   f"closed with 4401): the engine does not accept the key. Set the right one with "
                   f"--api-key (sent in the header named by --api-key-header, now {header!r}, and as "
                   f"?api_key= on WebSockets)")
    total = stats.total.num_requests
    if rate >= RATE_MIN_FAILURES and total and rate / total >= RATE_MIN_SHARE:
        out["rate"] = (f"memsoak hint: {rate} requests ({100 * rate / total:.1f}%) were rate-limited (HTTP "
                   f"429): the engine limits each client, and every user comes from 127.0.0.1. Give each "
                   f"user its own client identity, e.g. --extra-headers \"X-Forwarded-For: "
                   f"10.0.0.{{user_index}}\" (never {{uuid}} or {{rand}} there: they change with every "
                   f"request, so the engine would keep one rate-limit entry per request, a leak the "
                   f"harness itself makes)")
    return out


def limit_warning(options: Any, soak: Any) -> str | None:
    """The RSS limit measured against the engine's starting RSS (first sample)."""
    limit_mb = float(option(options, "rss_limit_mb"))
    rows = list(soak.recent)[:1]
    start = engine_rss(rows[0]) if rows else None
    if limit_mb <= 0 or not start or limit_mb * MB >= LIMIT_FACTOR * start:
        return None
    suggest = int(-(-3 * start / MB // 100) * 100)
    return (f"memsoak: --rss-limit-mb {limit_mb:g} is less than {LIMIT_FACTOR:g}x the engine's starting RSS "
            f"({start / MB:.0f} MB): a real engine can grow that much in warm-up alone and the limit "
            f"would stop the soak. Raise it (e.g. --rss-limit-mb {suggest}) or turn it off with 0")


def start(environment: Any, soak: Any) -> gevent.Greenlet:
    """Log the status line every --status-interval-s, hints when they first hold, until the run ends."""
    return gevent.spawn(_loop, environment, soak)


def _loop(environment: Any, soak: Any) -> None:
    interval = float(option(environment.parsed_options, "status_interval_s"))
    shown: set[str] = set()
    warned = False
    waited = 0.0
    while not soak.finalized:
        step = min(1.0, interval) if interval > 0 else 1.0
        gevent.sleep(step)
        waited += step
        if soak.finalized:
            return
        if not warned and soak.recent:
            warned = True
            if warning := limit_warning(environment.parsed_options, soak):
                log.warning(warning)
        for kind, hint in hints(environment).items():
            if kind not in shown:
                shown.add(kind)
                log.warning(hint)
        if interval > 0 and waited >= interval - 1e-6:
            waited = 0.0
            log.info(status_line(environment, soak))


def print_final_hints(environment: Any) -> None:
    """After the verdict: the hints again, where a reader of the last screen sees them."""
    if environment.runner is None:
        return
    for hint in hints(environment).values():
        print(hint, flush=True)
