"""Prometheus text exposition of the latest sample at GET /metrics.

With prometheus_client importable, a custom Collector on a private CollectorRegistry renders the
families (the engine's own default registry is never touched, so an engine that already exports
`process_*` metrics keeps its own). Without it, a small stdlib writer emits the same names in the
same text format (version 0.0.4). Scrapes read the ring's last sample: they never probe the process.
"""
from __future__ import annotations

import gc
from typing import Any, Callable, Iterator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (name, type, help, sample field); counters get "_total" appended on exposition
GAUGES: tuple[tuple[str, str, str], ...] = (
    ("process_resident_memory_bytes", "Resident memory size in bytes.", "rss_bytes"),
    ("process_virtual_memory_bytes", "Virtual memory size in bytes.", "vms_bytes"),
    ("process_open_fds", "Number of open file descriptors.", "open_fds"),
    ("memsoak_tree_resident_memory_bytes", "Resident memory of the process and its descendants.",
     "tree_rss_bytes"),
    ("memsoak_tree_processes", "Processes in the tree (this one included).", "tree_procs"),
    ("memsoak_unique_memory_bytes", "USS from smaps (only with MEMSOAK_USS=1).", "uss_bytes"),
    ("memsoak_python_allocated_blocks", "sys.getallocatedblocks(): live pymalloc blocks.",
     "allocated_blocks"),
    ("memsoak_tracemalloc_traced_bytes", "Memory traced by tracemalloc (when tracing).",
     "traced_current_bytes"),
    ("memsoak_tracemalloc_traced_peak_bytes", "Peak traced memory (when tracing).",
     "traced_peak_bytes"),
    ("memsoak_gc_objects", "Objects tracked by the gc (only with MEMSOAK_GC_OBJECTS=1).",
     "gc_objects"),
    ("memsoak_threads", "OS threads of the process, the hook's own excluded.", "threads"),
    ("memsoak_asyncio_tasks", "Pending asyncio tasks over the process's open event loops.",
     "asyncio_tasks"),
)


def _families(sample: dict[str, Any] | None, errors: dict[str, int]
              ) -> Iterator[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
    """(name, type, help, [(labels, value)]) for every family with a value."""
    sample = sample or {}
    for name, help_text, field in GAUGES:
        if sample.get(field) is not None:
            yield name, "gauge", help_text, [({}, float(sample[field]))]
    if sample.get("sample_cost_us") is not None:
        yield ("memsoak_sample_cost_seconds", "gauge", "CPU time the hook's sampler thread spent on the last sample.",
               [({}, sample["sample_cost_us"] / 1e6)])
    try:
        stats = gc.get_stats()
        yield ("python_gc_objects_collected", "counter", "Objects collected during gc.",
               [({"generation": str(gen)}, float(row["collected"])) for gen, row in enumerate(stats)])
        yield ("python_gc_objects_uncollectable", "counter", "Uncollectable objects found during gc.",
               [({"generation": str(gen)}, float(row["uncollectable"]))
                for gen, row in enumerate(stats)])
        yield ("python_gc_collections", "counter", "Number of times this generation was collected.",
               [({"generation": str(gen)}, float(row["collections"]))
                for gen, row in enumerate(stats)])
    except Exception:
        pass
    yield ("memsoak_hook_errors", "counter", "Errors caught inside the hook, by probe.",
           [({"probe": probe}, float(count)) for probe, count in sorted(errors.items())]
           or [({}, 0.0)])


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_stdlib(sample: dict[str, Any] | None, errors: dict[str, int]) -> bytes:
    lines: list[str] = []
    for name, kind, help_text, points in _families(sample, errors):
        exposed = f"{name}_total" if kind == "counter" else name
        lines.append(f"# HELP {exposed} {help_text}")
        lines.append(f"# TYPE {exposed} {kind}")
        for labels, value in points:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            lines.append(f"{exposed}{{{label_text}}} {value!r}" if label_text
                         else f"{exposed} {value!r}")
    return ("\n".join(lines) + "\n").encode()


def make_renderer(latest: Callable[[], dict[str, Any] | None],
                  errors: Callable[[], dict[str, int]]) -> Callable[[], bytes]:
    """A function producing the /metrics body. prometheus_client is imported on the first scrape,
    not at start: it adds ~11 ms and a few MB to every hooked process that is never scraped."""
    chosen: list[Callable[[], bytes]] = []

    def render() -> bytes:
        if not chosen:
            chosen.append(_prometheus_client_renderer(latest, errors)
                          or (lambda: render_stdlib(latest(), errors())))
        return chosen[0]()
    return render


def _prometheus_client_renderer(latest: Callable[[], dict[str, Any] | None],
                                errors: Callable[[], dict[str, int]]) -> Callable[[], bytes] | None:
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    except Exception:
        return None

    class HookCollector:
        def collect(self) -> Iterator[Any]:
            for name, kind, help_text, points in _families(latest(), errors()):
                label_names = sorted(points[0][0]) if points else []
                family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                family = family_type(name, help_text, labels=label_names)
                for labels, value in points:
                    family.add_metric([labels[key] for key in label_names], value)
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HookCollector())
    return lambda: generate_latest(registry)
