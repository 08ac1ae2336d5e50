"""Reading a run directory (see docs/CONTRACTS.md, "Run directory") into plain data.

Tolerant where a run that died leaves traces (a truncated last line of series.jsonl, missing
requests.json), strict where nothing can be analysed (no directory, no series.jsonl): those raise
RunDirError with one line naming the fix.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memsoak.contract import LOAD_COUNT_FIELDS, ROW_NUMBER_FIELDS, Event, Row


class RunDirError(ValueError):
    """The run directory cannot be analysed; the message says why and what to do."""


@dataclass
class RunData:
    run_dir: Path
    rows: list[Row]
    events: list[Event] = field(default_factory=list)
    run_json: dict[str, Any] = field(default_factory=dict)
    diffs: list[dict[str, Any]] = field(default_factory=list)        # tracemalloc DIFFs
    type_diffs: list[dict[str, Any]] = field(default_factory=list)   # gc type census diffs
    requests: list[dict[str, Any]] = field(default_factory=list)
    memray_files: list[str] = field(default_factory=list)            # paths relative to run_dir
    skipped_lines: int = 0
    problems: list[str] = field(default_factory=list)   # files ignored as unreadable, one line each


def _read_jsonl(path: Path, check: Any = None) -> tuple[list[dict[str, Any]], int]:
    """Rows of a JSON-lines file (gzipped when it ends .gz); unreadable or invalid lines are
    skipped and counted, never fatal: non-UTF-8 bytes, torn lines, non-objects, wrong types."""
    rows: list[dict[str, Any]] = []
    skipped = 0
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for raw in handle:
                try:
                    line = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    skipped += 1
                    continue
                if not line:
                    continue
                try:
                    value = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    # A killed writer can leave half a line at the end: keep everything before it.
                    skipped += 1
                    continue
                if isinstance(value, dict) and (check is None or check(value)):
                    rows.append(value)
                else:
                    skipped += 1
    except (OSError, EOFError, gzip.BadGzipFile) as error:   # a truncated segment: keep what was read
        skipped += 1
        if not rows and path.suffix != ".gz":
            raise RunDirError(f"{path}: cannot be read ({error}); is the run directory intact?") from None
    return rows, skipped




def valid_row(row: dict[str, Any]) -> bool:
    seq = row.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        return False
    for name in ROW_NUMBER_FIELDS:   # must be numbers when present (else skipped and counted)
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value != value or value in (float("inf"), float("-inf"))):
            return False
    for name in LOAD_COUNT_FIELDS:
        value = row.get(name)
        if value is not None and not (isinstance(value, dict) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())):
            return False
    return True


def _valid_event(event: dict[str, Any]) -> bool:
    t = event.get("t")
    return isinstance(event.get("type"), str) and (t is None or (isinstance(t, (int, float))
                                                                  and not isinstance(t, bool)))


def series_files(run_dir: Path) -> list[Path]:
    """The closed segments in order (a complete .gz, else its plain file), then series.jsonl."""
    numbers = sorted({int(p.name[7:13]) for p in run_dir.glob("series-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl*")
                      if not p.name.endswith(".tmp")})
    files = []
    for number in numbers:
        packed = run_dir / f"series-{number:06d}.jsonl.gz"
        files.append(packed if packed.is_file() else run_dir / f"series-{number:06d}.jsonl")
    live = run_dir / "series.jsonl"
    if live.is_file():
        files.append(live)
    return files


def _read_json(path: Path, default: Any, problems: list[str] | None = None) -> Any:
    """A JSON file, or `default` when missing or unreadable (binary, torn, wrong type: counted)."""
    if not path.exists():
        return default
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError, RecursionError, ValueError):
        if problems is not None:
            problems.append(f"{path.name} unreadable (not UTF-8 JSON): ignored")
        return default
    if default is not None and not isinstance(value, type(default)):
        if problems is not None:
            problems.append(f"{path.name} is a JSON {type(value).__name__}, not a {type(default).__name__}: ignored")
        return default
    return value


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
    files = series_files(run_dir)
    if not files:
        raise RunDirError(f"{run_dir}: no series.jsonl; is this a memsoak run directory?")
    rows, skipped = [], 0
    for path in files:
        found, bad = _read_jsonl(path, valid_row)
        rows += found
        skipped += bad
    events_path = run_dir / "events.jsonl"
    events = _read_jsonl(events_path, _valid_event)[0] if events_path.is_file() else []
    if not rows and not any(e.get("type") == "test_start" for e in events):
        raise RunDirError(f"{series}: no rows; the run recorded no samples (is the hook reachable?)")
    rows.sort(key=lambda row: (row.get("t") if row.get("t") is not None else 0.0))
    problems: list[str] = []
    run_json = _read_json(run_dir / "run.json", {}, problems)
    if not isinstance(run_json.get("settings", {}), dict):
        problems.append("run.json settings is not an object: defaults used")
        run_json = {**run_json, "settings": {}}
    requests = _read_json(run_dir / "requests.json", [], problems)
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
        problems=problems,
    )
