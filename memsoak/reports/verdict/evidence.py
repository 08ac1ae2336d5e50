"""Is the run evidence at all? The checks that come after the memory verdict, and the outcome.

The memory analysis says whether memory grew; these checks say whether the run could tell: the
load was valid (failure ratio at most `max_failure_ratio`, at least one success), the run ended as
planned (not by a signal), the rows were all written and the hook answered sensibly, and enough
samples were analysed for a verdict. Each failed check is an outcome of its own (memsoak/reports/outcome.py);
a proven leak still wins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import outcome as outcomes
from .verdicts import Verdict

_STATUS = re.compile(r"\b(?:HTTP |status[ =:]*)?([1-5]\d\d)\b")


@dataclass
class LoadCheck:
    requests: int = 0
    failures: int = 0
    ratio: float = 0.0
    max_ratio: float = 0.01
    # (request "METHOD name", error text, HTTP status or None, count), most frequent first
    by_name: list[tuple[str, str, int | None, int]] = field(default_factory=list)
    problem: str | None = None

    def describe(self) -> str:
        if not self.requests:
            return "no request was recorded"
        return (f"{self.failures}/{self.requests} requests failed ({100 * self.ratio:.2f}%, limit "
                f"{100 * self.max_ratio:.2f}%)")


def status_of(error: str) -> int | None:
    """The HTTP status an error text names ("HTTP 429 Too Many Requests", "401 Client Error")."""
    match = _STATUS.search(error)
    return int(match.group(1)) if match else None


def check_load(requests: list[dict[str, Any]], max_ratio: float) -> LoadCheck:
    check = LoadCheck(max_ratio=max_ratio)
    for entry in requests:
        if not isinstance(entry, dict):
            continue
        try:
            total, failed = int(entry.get("num_requests") or 0), int(entry.get("num_failures") or 0)
        except (TypeError, ValueError):
            continue
        check.requests += total
        check.failures += failed
        key = f"{entry.get('method', '')} {entry.get('name', '')}".strip()
        errors = entry.get("failures") if isinstance(entry.get("failures"), dict) else {}
        named = 0
        for text, count in errors.items():
            try:
                count = int(count)
            except (TypeError, ValueError):
                continue
            named += count
            check.by_name.append((key, str(text), status_of(str(text)), count))
        if failed > named:
            check.by_name.append((key, "failed (no error text recorded)", None, failed - named))
    check.by_name.sort(key=lambda item: -item[3])
    check.ratio = check.failures / check.requests if check.requests else 0.0
    if not check.requests:
        check.problem = "no request was recorded: the load never reached the engine"
    elif check.failures >= check.requests:
        check.problem = f"no request succeeded ({check.describe()}){_top(check)}"
    elif check.ratio > max_ratio:
        check.problem = f"{check.describe()}; the memory measured is not that of the planned load{_top(check)}"
    return check


def _top(check: LoadCheck) -> str:
    if not check.by_name:
        return ""
    parts = [f"{key}: {text} x{count}" for key, text, _status, count in check.by_name[:3]]
    return "; most: " + ", ".join(parts)


def missing_rows(rows: list[dict[str, Any]], events: dict[str, Any]) -> list[tuple[int, int]]:
    """Seq ranges (first, last) the hook sampled but series.jsonl does not hold."""
    seqs = sorted({int(row["seq"]) for row in rows if isinstance(row.get("seq"), int)})
    gaps = [(a + 1, b - 1) for a, b in zip(seqs, seqs[1:]) if b - a > 1]
    for kind in ("measurement_failed", "stop"):
        last = events.get(kind, {}).get("last_seq")
        if isinstance(last, int) and seqs and last > seqs[-1]:
            gaps.append((seqs[-1] + 1, last))
            break
    return gaps


def _ranges(gaps: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:5])
    return shown + (f" and {len(gaps) - 5} more ranges" if len(gaps) > 5 else "")


def assess(report: Any, run: Any) -> Any:
    """Set the report's outcome, exit code and headline from the memory verdict and these checks."""
    events: dict[str, Any] = report.events
    for event in run.events:   # the harness's own events the analysis does not pick
        kind = event.get("type")
        if kind in ("measurement_failed", "stop", "auth_failed") and kind not in events:
            events[kind] = event
    problems: dict[str, str] = {}
    for text in getattr(run, "problems", []):
        report.notes.append(text)
    max_ratio = report.settings.max_failure_ratio
    load = check_load(report.requests, max_ratio)
    report.load = {"requests": load.requests, "failures": load.failures, "ratio": round(load.ratio, 6),
                   "max_ratio": max_ratio, "ok": load.problem is None,
                   "failures_by_name": [{"request": k, "error": e, "status": s, "count": c}
                                        for k, e, s, c in load.by_name]}
    if "auth_failed" in events:
        problems[outcomes.BAD_CONFIG] = events["auth_failed"].get("error", "requests refused at start")
    no_load_data = not report.requests and not any("requests_total" in row for row in report.rows)
    if no_load_data:
        load.problem = None   # rows without load columns (not written by the plugin): nothing to check
        report.load["ok"] = None
    if load.problem:
        problems[outcomes.INVALID_LOAD] = load.problem
    stop = events.get("stop")
    failed = events.get("measurement_failed")
    gaps = missing_rows(report.rows, events)
    if failed:
        problems[outcomes.MEASUREMENT_FAILED] = str(failed.get("error", "no reason recorded"))
    elif stop is None and "test_start" in events:
        last = report.last_seq
        problems[outcomes.MEASUREMENT_FAILED] = (
            "incomplete: no stop event (the harness was killed or could not write); rows "
            f"after seq {last} (t={report.duration_s:.0f} s) are missing")
    if gaps:
        text = f"rows missing from series.jsonl: seq {_ranges(gaps)}"
        before = problems.get(outcomes.MEASUREMENT_FAILED)
        problems[outcomes.MEASUREMENT_FAILED] = f"{before}; {text}" if before else text
    if stop is not None and stop.get("reason") == "signal":
        problems[outcomes.INTERRUPTED] = (f"a signal (SIGINT/SIGTERM, e.g. a CI timeout) stopped the run at "
                                          f"t={float(stop.get('t') or 0):.0f} s, before its planned end")
    decided = [s for s in report.signals if s.verdict != Verdict.INSUFFICIENT]
    if not decided:
        problems[outcomes.INSUFFICIENT] = (
            f"{report.samples} sample(s) over {report.duration_s:.0f} s, no signal "
            "had enough samples after its warm-up for a verdict; run longer (--run-time)")
    held = {name: True for name in problems}
    if report.outcome in outcomes.PRECEDENCE:
        held[report.outcome] = True
    if report.driver is not None:
        held[outcomes.LEAK] = True
    result = outcomes.decide(**held)
    if result in problems:
        reason = problems[result]
        report.headline = f"{outcomes.title(result)}: {reason}"
    report.problems = [{"outcome": name, "exit_code": outcomes.exit_code(name), "reason": text}
                       for name, text in problems.items()]
    report.outcome = result
    report.exit_code = outcomes.exit_code(report.outcome)
    return report
