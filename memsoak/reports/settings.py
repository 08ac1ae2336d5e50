"""The analysis settings: declared once, as the fields of `AnalysisSettings`, parsed once by `resolve`.

Each field is a knob (memsoak/knobs.py): the Locust plugin registers it as `--name-with-dashes`
(env `MEMSOAK_NAME`, key `name-with-dashes` in locust.conf) and records it in run.json under
`settings.name`; `memsoak report --set name=value` overrides it afterwards. Every default is typed
(never None) because Locust's web form converts what the user types to the type of the default;
"unset" is a sentinel of the right type (e.g. `warmup_s = -1` means "detect it").

`rss_limit_mb` and `top_n` are read live by the plugin as well (it stops the run at the RSS limit,
and fetches that many allocation sites per snapshot diff): they stay here, defined once, because they
are verdict rules the report applies again to the recorded samples (outcome `rss_limit`, the sites
listed), and an offline `memsoak report --set` must be able to change them (the live status line
also reads `rate_threshold_mb_per_hour`). `max_failure_ratio` is read by the analysis only
(memsoak/reports/evidence.py: whether the load was valid).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from memsoak.knobs import NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, Knob, knob, knobs_of
from memsoak.knobs import out_of_range as _out_of_range

Setting = Knob   # the name this module exported before the knobs were shared by every side


@dataclass(frozen=True)
class AnalysisSettings:
    """The analysis settings of one report, typed. Read them as attributes (`settings.alpha`);
    `settings["alpha"]` still works for callers written against the old mapping."""

    growth_threshold_mb: float = knob(
        50.0, "Original spec: RSS growth (late 10% avg minus early 10% avg) above this is a leak, MB", POSITIVE)
    rate_threshold_mb_per_hour: float = knob(
        10.0, "Original spec: OLS RSS slope above this is a leak, MB/hour", POSITIVE)
    rss_limit_mb: float = knob(
        512.0, "Stop the test when the engine's RSS exceeds this, MB (0 disables)", NON_NEGATIVE)
    warmup_s: float = knob(
        -1.0, "Seconds excluded at the start of the analysis; negative = detect the warm-up end", (None, None, True))
    warmup_max_fraction: float = knob(
        0.5, "Automatic warm-up detection never cuts more than this fraction of the run", (0.0, 1.0, False))
    snapshot_guard_s: float = knob(
        10.0, "Seconds around each tracemalloc snapshot left out of memory trends, its step removed "
              "(snapshots cost engine memory); 0 keeps the raw series", NON_NEGATIVE)
    top_n: int = knob(20, "Allocation sites / object types listed in the report", (1, 10_000, True))
    alpha: float = knob(0.01, "Significance level of the trend tests (one-sided)", (0.0, 0.5, False))
    min_rate_mb_per_hour: float = knob(
        0.5, "A memory trend slower than this is not called a leak even when significant, MB/hour", NON_NEGATIVE)
    rss_min_growth_mb: float = knob(
        2.0, "RSS must also grow this much over the analysed window to be a leak (allocator chunks), MB",
        NON_NEGATIVE)
    heap_min_growth_mb: float = knob(
        0.25, "The traced heap must also grow this much over the analysed window to be a leak, MB", NON_NEGATIVE)
    heap_blocks_min_growth: float = knob(
        2000.0, "Smallest growth of allocated blocks (heap proxy when not tracing) called a leak", NON_NEGATIVE)
    objects_min_growth: float = knob(5000.0, "Smallest gc object count growth called a leak", NON_NEGATIVE)
    fds_min_growth: float = knob(10.0, "Smallest open-fd growth called a leak", NON_NEGATIVE)
    threads_min_growth: float = knob(5.0, "Smallest thread count growth called a leak", NON_NEGATIVE)
    tasks_min_growth: float = knob(10.0, "Smallest asyncio task count growth called a leak", NON_NEGATIVE)
    plateau_ratio: float = knob(
        0.25, "Growth whose late-half slope is below this fraction of the WHOLE window's slope is a plateau "
              "(and growth still walking up at this fraction of the whole pace is not)", UNIT_INTERVAL)
    plateau_early_ratio: float = knob(
        0.25, "Growth that rose monotonically early and whose late-half slope fell below this fraction of "
              "the EARLY half's slope has settled (no leak); a run.json without it uses its plateau_ratio",
        UNIT_INTERVAL)
    prod_sessions_per_hour: float = knob(
        0.0, "Declared production rate of new sessions, for the 24 h projection (0 = not declared)", NON_NEGATIVE)
    prod_messages_per_hour: float = knob(
        0.0, "Declared production rate of chat messages, for the 24 h projection (0 = not declared)",
        NON_NEGATIVE)
    prod_requests_per_hour: float = knob(
        0.0, "Declared production rate of requests, for the 24 h projection (0 = not declared)", NON_NEGATIVE)
    projection_hours: float = knob(24.0, "Horizon of the growth projection, hours", POSITIVE)
    max_failure_ratio: float = knob(
        0.01, "Share of failed requests above which the load is invalid and the run is not evidence",
        UNIT_INTERVAL)
    chart_points: int = knob(1500, "Points per chart line in report.html (downsampled)", (10, 100_000, True))

    # The old mapping interface (run.json's `settings`, tests and scripts written against a dict).
    def __getitem__(self, name: str) -> Any:
        if name not in BY_NAME:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in BY_NAME

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name) if name in BY_NAME else default

    def keys(self) -> list[str]:
        return list(BY_NAME)

    def items(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in BY_NAME]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def replace(self, **changes: Any) -> "AnalysisSettings":
        return dataclasses.replace(self, **changes)


SETTINGS: tuple[Knob, ...] = knobs_of(AnalysisSettings)
BY_NAME: dict[str, Knob] = {s.name: s for s in SETTINGS}
LIMITS: dict[str, tuple[Any, Any, bool]] = {s.name: s.range for s in SETTINGS if s.range is not None}


def out_of_range(name: str, value: Any, limits: dict[str, tuple[Any, Any, bool]] | None = None) -> str | None:
    """Why `value` is not allowed for setting `name` ("must be > 0"), or None when it is."""
    return _out_of_range(value, (limits or LIMITS).get(name))


class SettingError(ValueError):
    """A setting has a value of the wrong type; the message names the setting and the fix."""


def resolve(*layers: dict[str, Any] | None) -> AnalysisSettings:
    """Defaults overridden by each layer in turn (run.json's settings, then the caller's), typed.

    Unknown names are ignored (run.json also holds the plugin's own settings); known ones are
    converted to their declared type and range-checked. A layer that sets `plateau_ratio` but not
    `plateau_early_ratio` sets both: runs recorded before the split had one knob for both meanings,
    so their verdicts stay the same.
    """
    values: dict[str, Any] = {}
    for layer in layers:
        layer = dict(layer or {})
        if layer.get("plateau_ratio") is not None and layer.get("plateau_early_ratio") is None:
            layer["plateau_early_ratio"] = layer["plateau_ratio"]
        for name, value in layer.items():
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
    return AnalysisSettings(**values)
