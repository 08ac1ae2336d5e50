"""bench/verdict_real.py's own judgement and bookkeeping, without real runs (those are in
test_real_runs.py, marked slow)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import verdict_real  # noqa: E402


def test_right_signal_rules() -> None:
    assert verdict_real.right_signal("native", {"rss"})
    assert not verdict_real.right_signal("native", {"rss", "heap"})
    assert verdict_real.right_signal("fd", {"open_fds", "heap"})
    assert not verdict_real.right_signal("asyncio_task", {"heap"})
    assert verdict_real.right_signal("score_history", {"heap", "rss"})
    assert not verdict_real.right_signal("clean", {"rss"})


def test_cases_parse_or_name_the_fix() -> None:
    assert verdict_real.parse_case("fd+asyncio_task:256") == "fd+asyncio_task:256"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown case"):
        verdict_real.parse_case("score_histroy:64")
    with pytest.raises(argparse.ArgumentTypeError, match="whole bytes"):
        verdict_real.parse_case("native:1k")


def test_stored_runs_name_their_case_from_the_engine_command_line(tmp_path: Path) -> None:
    def stored(name: str, cmdline: list[str]) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "run.json").write_text(json.dumps({"health": {"cmdline": cmdline}}))
        return run_dir

    engine = ["python", "-m", "memsoak.demo_engine", "--port", "1"]
    assert verdict_real.stored_case(stored("clean-r4-101500", engine)) == ("clean", 4)
    leaky = stored("fd+asyncio_task-256-r2-101500", [*engine, "--leaks", "fd,asyncio_task:256", "--cache-entries", "64"])
    assert verdict_real.stored_case(leaky) == ("fd+asyncio_task:256", 2)
