"""What crosses memsoak's boundaries, defined once: exit codes, run-directory event types, the
fields of a hook SAMPLE and a harness ROW, units, the quick run's length, the planted leak names,
and the RSS-limit rule.

Every side imports these names from here instead of copying them: the hook inside the engine
(`memsoak/profiler/`, which may import this module: it uses the standard library only), the demo engine,
the Locust plugin and CLI (`memsoak/`), and the analysis (`memsoak/reports/`). docs/CONTRACTS.md describes
the same shapes in prose; `tests/memsoak/test_contract.py` checks that no other module defines them
again. Standard library only, and no import of anything of ours: this module must import inside an
engine whose environment holds nothing but psutil.
"""
from __future__ import annotations

from typing import Final, Literal, Mapping, TypedDict

# --- units ------------------------------------------------------------------------------------
MB: Final = 1024 * 1024   # every "MB" memsoak prints or reads (flags, reports) is 2**20 bytes

# --- run lengths ------------------------------------------------------------------------------
QUICK_RUN_S: Final = 300   # --quick / `memsoak demo` without --duration: the 5-minute smoke soak

# --- outcomes and exit codes (distinct from Locust's own 0-3) ---------------------------------
PASS: Final = "pass"
LEAK: Final = "leak"
RSS_LIMIT: Final = "rss_limit"
ENGINE_LOST: Final = "engine_lost"
BAD_CONFIG: Final = "bad_config"
REGRESSION: Final = "regression"
INCONCLUSIVE: Final = "inconclusive"              # growth beyond the floors; too short a run to tell a filling cache from a leak
INVALID_LOAD: Final = "invalid_load"              # failure ratio above --max-failure-ratio, or no success
INTERRUPTED: Final = "interrupted"                # SIGINT/SIGTERM before the planned end
INSUFFICIENT: Final = "insufficient_evidence"     # too few samples for any signal to have a verdict
MEASUREMENT_FAILED: Final = "measurement_failed"  # rows could not be written, or the hook answered garbage

EXIT_CODES: Final[dict[str, int]] = {
    PASS: 0,
    LEAK: 10,
    RSS_LIMIT: 11,
    ENGINE_LOST: 12,
    BAD_CONFIG: 13,
    REGRESSION: 14,
    INCONCLUSIVE: 15,
    INVALID_LOAD: 16,
    INTERRUPTED: 17,
    INSUFFICIENT: 18,
    MEASUREMENT_FAILED: 19,
}
# The codes the processes exit with, by name, for the modules that exit before any report exists.
EXIT_PASS: Final = EXIT_CODES[PASS]
EXIT_RSS_LIMIT: Final = EXIT_CODES[RSS_LIMIT]
EXIT_ENGINE_LOST: Final = EXIT_CODES[ENGINE_LOST]
EXIT_BAD_CONFIG: Final = EXIT_CODES[BAD_CONFIG]
EXIT_INTERRUPTED: Final = EXIT_CODES[INTERRUPTED]
EXIT_MEASUREMENT_FAILED: Final = EXIT_CODES[MEASUREMENT_FAILED]

# --- events.jsonl: one {"type", "t", "t_wall", ...} per line, written by the plugin -----------
EVENT_TEST_START: Final = "test_start"
EVENT_WARMUP_END: Final = "warmup_end"
EVENT_SNAPSHOT: Final = "snapshot"                  # label, started_t
EVENT_RSS_LIMIT: Final = "rss_limit"                # rss_bytes, limit_bytes
EVENT_ENGINE_LOST: Final = "engine_lost"            # last_seq, error
EVENT_MEASUREMENT_FAILED: Final = "measurement_failed"  # error, last_seq, last_written_seq
EVENT_AUTH_FAILED: Final = "auth_failed"            # error
EVENT_ALLOC_TRACKING: Final = "alloc_tracking"      # mode, note, sampler, tracemalloc_frames, config
EVENT_STOP: Final = "stop"                          # reason (STOP_REASONS), last_seq
EVENT_TYPES: Final = (EVENT_TEST_START, EVENT_WARMUP_END, EVENT_SNAPSHOT, EVENT_RSS_LIMIT, EVENT_ENGINE_LOST,
                      EVENT_MEASUREMENT_FAILED, EVENT_AUTH_FAILED, EVENT_ALLOC_TRACKING, EVENT_STOP)

# Why a run stopped (the `stop` event's reason): the planned end, the user (web UI), a signal, or
# the harness itself for one of the events above.
STOP_DURATION: Final = "duration"
STOP_USER: Final = "user"
STOP_SIGNAL: Final = "signal"
StopReason = Literal["duration", "user", "signal", "rss_limit", "engine_lost", "measurement_failed",
                     "auth_failed"]


class Event(TypedDict, total=False):
    """One line of events.jsonl: `type` and `t` always, the rest by type (see EVENT_*)."""
    type: str
    t: float            # seconds since test start, harness clock
    t_wall: float
    label: str
    started_t: float
    rss_bytes: int
    limit_bytes: int
    last_seq: int
    last_written_seq: int | None
    error: str
    reason: str
    mode: str | None
    note: str | None
    sampler: dict[str, object] | None
    tracemalloc_frames: int | None
    config: dict[str, object]


# --- the hook's SAMPLE and the harness's ROW ---------------------------------------------------
class Sample(TypedDict):
    """One hook sample (GET /samples): every key present, an absent probe's fields null."""
    seq: int
    t_mono: float
    t_wall: float
    pid: int
    rss_bytes: int | None
    vms_bytes: int | None
    tree_rss_bytes: int | None       # the engine's whole process tree (workers included)
    tree_procs: int | None
    uss_bytes: int | None
    traced_current_bytes: int | None  # null when not tracing
    traced_peak_bytes: int | None
    allocated_blocks: int | None
    gc_count_0: int | None
    gc_count_1: int | None
    gc_count_2: int | None
    gc_collections_0: int | None
    gc_collections_1: int | None
    gc_collections_2: int | None
    gc_objects: int | None
    open_fds: int | None
    threads: int | None
    asyncio_tasks: int | None
    sample_cost_us: int | None
    hook_errors: int | None


class LoadSide(TypedDict):
    """Locust's stats at the moment a sample was joined (on a master: the workers' aggregate)."""
    users: int
    rps: float
    fail_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests_total: int
    failures_total: int
    requests_by_name: dict[str, int]   # "METHOD name" -> cumulative requests
    failures_by_name: dict[str, int]
    ops: dict[str, int]                # cumulative successful operations (memsoak/ops.py)


class Row(Sample, LoadSide):
    """One line of series.jsonl: a SAMPLE, `t` on the harness clock, and the load side."""
    t: float


SAMPLE_FIELDS: Final[tuple[str, ...]] = tuple(Sample.__annotations__)
LOAD_FIELDS: Final[tuple[str, ...]] = tuple(LoadSide.__annotations__)
ROW_FIELDS: Final[tuple[str, ...]] = (*SAMPLE_FIELDS, "t", *LOAD_FIELDS)
SAMPLE_INT_FIELDS: Final = ("seq",)                                  # an integer, never null
SAMPLE_NUMBER_FIELDS: Final = tuple(f for f in SAMPLE_FIELDS if f not in SAMPLE_INT_FIELDS)
SAMPLE_FLOAT_FIELDS: Final = frozenset({"t_mono", "t_wall"})         # every other number is whole
LOAD_COUNT_FIELDS: Final = ("requests_by_name", "failures_by_name", "ops")   # {name: number}
# A row's fields that are numbers when present (the analysis skips and counts a row breaking this).
ROW_NUMBER_FIELDS: Final = ("t", *SAMPLE_NUMBER_FIELDS,
                            *(f for f in LOAD_FIELDS if f not in LOAD_COUNT_FIELDS))


class RequestStats(TypedDict):
    """One entry of requests.json: Locust's per-name table at stop."""
    method: str
    name: str
    num_requests: int
    num_failures: int
    median_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    avg_ms: float
    rps: float
    failures: dict[str, int]   # error text -> occurrences


# --- the RSS limit -------------------------------------------------------------------------------
def engine_rss(row: Mapping[str, object]) -> int | float | None:
    """The RSS a limit is held against: the engine's whole process tree when the hook measured it
    (a multi-worker server dies of its total, not of one worker), else the process's own."""
    value = row.get("tree_rss_bytes") or row.get("rss_bytes")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def over_rss_limit(row: Mapping[str, object], limit_mb: float) -> int | float | None:
    """The engine's RSS in `row` when it is above `limit_mb` (0 or less: no limit), else None."""
    rss = engine_rss(row)
    if limit_mb <= 0 or rss is None or rss <= limit_mb * MB:
        return None
    return rss


# --- the demo engine's planted leaks (memsoak/demo_engine/leaks.py plants them; `memsoak demo --leak`) --
LEAK_NAMES: Final = ("session_state", "response_cache", "score_history", "native", "fd", "asyncio_task",
                     "lru_cache", "logger", "small_append", "filling_cache", "async_gen")
