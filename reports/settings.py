"""The analysis settings: one table, one source of truth.

Every entry is registered by the Locust plugin as `--name-with-dashes` (env `MEMSOAK_NAME`, key
`name-with-dashes` in locust.conf) and lands in run.json under `settings.name`. Every default is
typed (never None) because Locust's web form converts what the user types to the type of the
default; "unset" is a sentinel of the right type (e.g. `warmup_s = -1` means "detect it").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return "MEMSOAK_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("growth_threshold_mb", float, 50.0,
            "Original spec: RSS growth (late 10% avg minus early 10% avg) above this is a leak, MB"),
    Setting("rate_threshold_mb_per_hour", float, 10.0,
            "Original spec: OLS RSS slope above this is a leak, MB/hour"),
    Setting("rss_limit_mb", float, 512.0,
            "Stop the test when the engine's RSS exceeds this, MB (0 disables)"),
    Setting("warmup_s", float, -1.0,
            "Seconds excluded at the start of the analysis; negative = detect the warm-up end"),
    Setting("warmup_max_fraction", float, 0.5,
            "Automatic warm-up detection never cuts more than this fraction of the run"),
    Setting("snapshot_guard_s", float, 10.0,
            "Seconds around each tracemalloc snapshot left out of memory trends, its step removed "
            "(snapshots cost engine memory); 0 keeps the raw series"),
    Setting("top_n", int, 20, "Allocation sites / object types listed in the report"),
    Setting("alpha", float, 0.01, "Significance level of the trend tests (one-sided)"),
    Setting("min_rate_mb_per_hour", float, 0.5,
            "A memory trend slower than this is not called a leak even when significant, MB/hour"),
    Setting("rss_min_growth_mb", float, 2.0,
            "RSS must also grow this much over the analysed window to be a leak (allocator chunks), MB"),
    Setting("heap_min_growth_mb", float, 0.25,
            "The traced heap must also grow this much over the analysed window to be a leak, MB"),
    Setting("heap_blocks_min_growth", float, 2000.0,
            "Smallest growth of allocated blocks (heap proxy when not tracing) called a leak"),
    Setting("objects_min_growth", float, 5000.0, "Smallest gc object count growth called a leak"),
    Setting("fds_min_growth", float, 10.0, "Smallest open-fd growth called a leak"),
    Setting("threads_min_growth", float, 5.0, "Smallest thread count growth called a leak"),
    Setting("tasks_min_growth", float, 10.0, "Smallest asyncio task count growth called a leak"),
    Setting("plateau_ratio", float, 0.25,
            "Growth whose late-half slope is below this fraction of the whole slope is a plateau"),
    Setting("prod_sessions_per_hour", float, 0.0,
            "Declared production rate of new sessions, for the 24 h projection (0 = not declared)"),
    Setting("prod_messages_per_hour", float, 0.0,
            "Declared production rate of chat messages, for the 24 h projection (0 = not declared)"),
    Setting("prod_requests_per_hour", float, 0.0,
            "Declared production rate of requests, for the 24 h projection (0 = not declared)"),
    Setting("projection_hours", float, 24.0, "Horizon of the growth projection, hours"),
    Setting("max_failure_ratio", float, 0.01,
            "Share of failed requests above which the load is invalid and the run is not evidence"),
    Setting("chart_points", int, 1500, "Points per chart line in report.html (downsampled)"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

# Allowed range of each setting: (lowest, highest, lowest itself allowed); None = unbounded. A value
# outside is refused with one line, never clamped or silently switched off.
_POSITIVE, _NON_NEGATIVE = (0.0, None, False), (0.0, None, True)
LIMITS: dict[str, tuple[float | None, float | None, bool]] = {
    "growth_threshold_mb": _POSITIVE, "rate_threshold_mb_per_hour": _POSITIVE,
    "rss_limit_mb": _NON_NEGATIVE, "warmup_s": (None, None, True),
    "warmup_max_fraction": (0.0, 1.0, False), "snapshot_guard_s": _NON_NEGATIVE,
    "top_n": (1, 10_000, True), "alpha": (0.0, 0.5, False),
    "min_rate_mb_per_hour": _NON_NEGATIVE, "rss_min_growth_mb": _NON_NEGATIVE,
    "heap_min_growth_mb": _NON_NEGATIVE, "heap_blocks_min_growth": _NON_NEGATIVE,
    "objects_min_growth": _NON_NEGATIVE, "fds_min_growth": _NON_NEGATIVE,
    "threads_min_growth": _NON_NEGATIVE, "tasks_min_growth": _NON_NEGATIVE,
    "plateau_ratio": (0.0, 1.0, True), "prod_sessions_per_hour": _NON_NEGATIVE,
    "prod_messages_per_hour": _NON_NEGATIVE, "prod_requests_per_hour": _NON_NEGATIVE,
    "projection_hours": _POSITIVE, "max_failure_ratio": (0.0, 1.0, True), "chart_points": (10, 100_000, True),
}


def out_of_range(name: str, value: Any, limits: dict[str, tuple[Any, Any, bool]] | None = None) -> str | None:
    """Why `value` is not allowed for setting `name` ("must be > 0"), or None when it is."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return "must be a finite number"
    low, high, low_ok = (limits or LIMITS).get(name, (None, None, True))
    if low is not None and (value < low or (value == low and not low_ok)):
        if high is not None:
            return f"must be {'>=' if low_ok else '>'} {low:g} and <= {high:g}"
        return f"must be {'>=' if low_ok else '>'} {low:g}"
    if high is not None and value > high:
        return f"must be {'>=' if low_ok else '>'} {low:g} and <= {high:g}" if low is not None else f"must be <= {high:g}"
    return None


class SettingError(ValueError):
    """A setting has a value of the wrong type; the message names the setting and the fix."""


def resolve(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by each layer in turn (run.json's settings, then the caller's).

    Unknown names are ignored (run.json also holds the plugin's own settings); known ones are
    converted to their declared type.
    """
    values = {s.name: s.default for s in SETTINGS}
    for layer in layers:
        for name, value in (layer or {}).items():
            spec = BY_NAME.get(name)
            if spec is None or value is None:
                continue
            try:
                values[name] = spec.type(value)
            except (TypeError, ValueError):
                raise SettingError(
                    f"setting {name}={value!r} is not a {spec.type.__name__}: fix {spec.flag}"
                ) from None
            problem = out_of_range(name, values[name])
            if problem:
                raise SettingError(f"setting {name}={value!r} {problem}: fix {spec.flag}")
    return values
