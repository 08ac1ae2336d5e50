"""Rows and events reach the disk the moment they are appended (a kill loses nothing)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from memsoak.rundir import RunDir, new_run_id


def test_rows_are_readable_before_close(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.append_row({"seq": 1, "rss_bytes": 10})
    run.append_event("test_start", 0.0)
    # another reader sees both lines while the files are still open
    assert json.loads((run.path / "series.jsonl").read_text()) == {"seq": 1, "rss_bytes": 10}
    assert json.loads((run.path / "events.jsonl").read_text())["type"] == "test_start"
    run.close()


def test_run_id_format_and_no_overwrite(tmp_path: Path) -> None:
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", new_run_id())
    RunDir(tmp_path, "same")
    with pytest.raises(FileExistsError):
        RunDir(tmp_path, "same")
