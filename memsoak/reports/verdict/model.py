"""The Report: plain dataclasses that the renderers read (data model apart from rendering)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..stats.attribution import Suspect
from ..stats.rates import Attribution, OpRate, Projection
from ..stats.trend import Trend
from ..stats.warmup import WarmupCut
from .legacy import LegacyFigures
from ..settings import AnalysisSettings
from .verdicts import Verdict


@dataclass
class SignalReport:
    name: str                  # rss | tree_rss | heap | gc_objects | open_fds | threads | asyncio_tasks
    label: str
    unit: str                  # bytes | blocks | count
    source: str                # the row field it was read from
    verdict: Verdict           # leak | inconclusive | plateau | pass | insufficient
    reason: str
    samples: int
    warmup: WarmupCut
    first: float
    last: float
    minimum: float
    maximum: float
    trend: Trend | None = None
    plateau_level: float | None = None
    snapshot_steps: float | None = None   # total step removed at tracemalloc snapshots
    steps: list[tuple[float, float]] = field(default_factory=list)   # (snapshot t, step removed)
    per_op: list[OpRate] = field(default_factory=list)
    attribution: Attribution | None = None
    projection: Projection | None = None
    evidence: str = ""         # which evidence drove the verdict (tests, sites, plateau)
    decide_after_s: float | None = None   # inconclusive: run length (s from start) that would decide
    resolution: float = 0.0    # growth over the window the measurement cannot tell from none (sampled heap)


@dataclass
class Report:
    run_id: str
    run_dir: str
    generated_at: str
    settings: AnalysisSettings
    outcome: str               # pass | leak | rss_limit | engine_lost
    exit_code: int
    verdict: Verdict           # the memory verdict alone: leak | inconclusive | pass
    driver: str | None         # the signal that drove a leak verdict
    headline: str              # one sentence for a terminal or a CI summary
    duration_s: float
    samples: int
    first_seq: int | None
    last_seq: int | None
    signals: list[SignalReport]
    legacy: LegacyFigures | None
    events: dict[str, Any]     # engine_lost / rss_limit / stop details when recorded
    requests: list[dict[str, Any]]
    sites: list[Suspect]
    types: list[Suspect]
    resources: dict[str, list[tuple[str, float]]]
    memray_files: list[str]
    notes: list[str]
    snapshots: list[tuple[float, str]] = field(default_factory=list)   # (t, label) of each snapshot
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)  # for charts, not JSON
    # memsoak/reports/verdict/evidence.py: the load check and every reason the run is not evidence
    load: dict[str, Any] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def signal(self, name: str) -> SignalReport | None:
        return next((s for s in self.signals if s.name == name), None)
