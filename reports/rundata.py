"""Reading a run directory (see docs/CONTRACTS.md, "Run directory") into plain data.

Tolerant where a run that died leaves traces (a truncated last line of series.jsonl, missing
requests.json), strict where nothing can be analysed (no directory, no series.jsonl): those raise
RunDirError with one line naming the fix.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class RunDirError(ValueError):
    """The run directory cannot be analysed; the message says why and what to do."""


@dataclass
class RunData:
    run_dir: Path
    rows: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    run_json: dict[str, Any] = field(default_factory=dict)
    diffs: list[dict[str, Any]] = field(default_factory=list)        # tracemalloc DIFFs
    type_diffs: list[dict[str, Any]] = field(default_factory=list)   # gc type census diffs
    requests: list[dict[str, Any]] = field(default_factory=list)
    memray_files: list[str] = field(default_factory=list)            # paths relative to run_dir
    skipped_lines: int = 0


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    skipped = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                # A killed writer can leave half a line at the end: keep everything before it.
                skipped += 1
                continue
            if isinstance(value, dict):
                rows.append(value)
            else:
                skipped += 1
    return rows, skipped


def _read_json(path: Path, default: Any) -> Any:
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return default


_DIFF_NAME = re.compile(r"^(diff|types)-(?P<base>.+)--(?P<head>.+)\.json$")


def _read_diffs(folder: Path, prefix: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob(f"{prefix}-*--*.json")) if folder.is_dir() else []:
        diff = _read_json(path, None)
        if not isinstance(diff, dict):
            continue
        match = _DIFF_NAME.match(path.name)
        if match:
            diff.setdefault("base", match.group("base"))
            diff.setdefault("head", match.group("head"))
        diff["_file"] = str(path.relative_to(folder.parent))
        found.append(diff)
    return found


def load_run(run_dir: str | Path) -> RunData:
    """Everything the analysis needs from one run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory; pass a results/<run-id>/ directory")
    series = run_dir / "series.jsonl"
    if not series.is_file():
        raise RunDirError(f"{run_dir}: no series.jsonl; is this a memsoak run directory?")
    rows, skipped = _read_jsonl(series)
    if not rows:
        raise RunDirError(f"{series}: no rows; the run recorded no samples (is the hook reachable?)")
    rows.sort(key=lambda row: (row.get("t") if row.get("t") is not None else 0.0))
    events_path = run_dir / "events.jsonl"
    events = _read_jsonl(events_path)[0] if events_path.is_file() else []
    run_json = _read_json(run_dir / "run.json", {})
    requests = _read_json(run_dir / "requests.json", [])
    memray_dir = run_dir / "memray"
    memray_files = (
        sorted(str(p.relative_to(run_dir)) for p in memray_dir.rglob("*") if p.is_file())
        if memray_dir.is_dir() else []
    )
    return RunData(
        run_dir=run_dir,
        rows=rows,
        events=events,
        run_json=run_json if isinstance(run_json, dict) else {},
        diffs=_read_diffs(run_dir / "snapshots", "diff"),
        type_diffs=_read_diffs(run_dir / "snapshots", "types"),
        requests=requests if isinstance(requests, list) else [],
        memray_files=memray_files,
        skipped_lines=skipped,
    )
