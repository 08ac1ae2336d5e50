"""The run directory on disk: every row and event is appended and flushed the moment it exists.

A crash, a kill -9 or Ctrl-C of the harness therefore loses nothing that was measured; what is
written at stop (requests.json, snapshot diffs, the reports) is written on top of that.
"""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any, TextIO


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
        if isinstance(row.get("seq"), int):
            self.last_seq_written = row["seq"]

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
