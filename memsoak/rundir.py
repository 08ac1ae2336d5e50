"""The run directory on disk: every row and event is appended and flushed the moment it exists.

A crash, a kill -9 or Ctrl-C of the harness therefore loses nothing that was measured; what is
written at stop (requests.json, snapshot diffs, the reports) is written on top of that.

Disk budget: series.jsonl is the open segment. Every SEGMENT_ROWS rows (1 h at 1 Hz) it is closed,
renamed to series-NNNNNN.jsonl, gzipped to series-NNNNNN.jsonl.gz (written to a .tmp, fsynced,
renamed) and only then removed: a crash at any step leaves every row readable (memsoak/reports/rundata.py
prefers a complete .gz, else the plain segment). ~1.1 kB a row raw, ~10x less gzipped.
"""
from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, TextIO


SEGMENT_ROWS = 3600


def segment_name(number: int, compressed: bool = True) -> str:
    return f"series-{number:06d}.jsonl" + (".gz" if compressed else "")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class RunDir:
    def __init__(self, results_dir: str | Path, run_id: str = "") -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(results_dir) / self.run_id
        self.path.mkdir(parents=True, exist_ok=False)
        (self.path / "snapshots").mkdir()
        self._series: TextIO = (self.path / "series.jsonl").open("a", encoding="utf-8")
        self._events: TextIO = (self.path / "events.jsonl").open("a", encoding="utf-8")
        self.rows_written = 0
        self.last_seq_written: int | None = None
        self.segment_rows = SEGMENT_ROWS
        self.segments = 0
        self._rows_in_segment = 0

    def write_json(self, relative: str, value: Any) -> Path:
        target = self.path / relative
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
        tmp.replace(target)  # readers never see half a file
        return target

    def append_row(self, row: dict[str, Any]) -> None:
        """One line per row, flushed at once; an OSError (disk full) propagates to the caller."""
        self._series.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        self._series.flush()
        self.rows_written += 1
        self._rows_in_segment += 1
        if isinstance(row.get("seq"), int):
            self.last_seq_written = row["seq"]
        if self.segment_rows and self._rows_in_segment >= self.segment_rows:
            self.rotate()

    def rotate(self) -> None:
        """Close the open segment and keep it gzipped; every step leaves all rows readable."""
        self._series.close()
        self.segments += 1
        plain = self.path / segment_name(self.segments, compressed=False)
        os.replace(self.path / "series.jsonl", plain)
        self._series = (self.path / "series.jsonl").open("a", encoding="utf-8")
        self._rows_in_segment = 0
        packed = self.path / segment_name(self.segments)
        tmp = packed.with_suffix(".gz.tmp")
        with plain.open("rb") as source, gzip.open(tmp, "wb", compresslevel=6) as target:
            shutil.copyfileobj(source, target)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, packed)
        plain.unlink()

    def append_event(self, kind: str, t: float, **fields: Any) -> None:
        event = {"type": kind, "t": round(t, 3), "t_wall": time.time(), **fields}
        self._events.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
        self._events.flush()

    def close(self) -> None:
        for handle in (self._series, self._events):
            if not handle.closed:
                try:
                    handle.close()
                except OSError:
                    pass   # a full disk refuses the last flush: what was flushed before is kept
