"""Diffs computed in the engine name the planted allocation; type censuses and their diff."""
import os
import sys
import time

import pytest

from memsoak import profiler

from hookhelp import ALLOC_ENGINE, free_port, http, start, wait_for

HOOK_DIR = os.path.dirname(profiler.__file__) + os.sep
PLANTED_LINE = next(number for number, text in enumerate(open(ALLOC_ENGINE), start=1)
                    if "# PLANTED" in text)


def _diff_after_planting(started, n: int = 3000) -> dict:
    assert http(started.hook + "/snapshots/base", "POST")[0] == 200
    assert http(started.engine + f"/alloc?n={n}")[0] == 200
    assert http(started.hook + "/snapshots/head", "POST")[0] == 200
    status, diff = http(started.hook + "/diff?base=base&head=head&top=5")
    assert status == 200
    return diff


def test_diff_names_the_planted_file_and_line_first(port: int) -> None:
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    options=["--tracemalloc-frames", "10"])
    diff = _diff_after_planting(started)
    top = diff["by_size"][0]
    assert (top["file"], top["line"]) == (ALLOC_ENGINE, PLANTED_LINE)
    assert top["size_diff"] >= 3000 * 1000 and top["count_diff"] >= 3000
    assert diff["by_count"][0]["line"] == PLANTED_LINE
    # innermost first, then its caller (do_GET), and never a frame of the hook itself
    assert top["traceback"][0] == f"{ALLOC_ENGINE}:{PLANTED_LINE}"
    assert any("alloc_engine.py" in frame for frame in top["traceback"][1:])
    for site in diff["by_size"] + diff["by_count"]:
        assert not any(frame.startswith(HOOK_DIR) for frame in site["traceback"]), site
    assert diff["total_size_diff"] >= 3000 * 1000
    assert http(started.hook + "/snapshots")[1] == {"labels": ["base", "head"]}


def test_first_snapshot_starts_tracing_with_one_frame_in_tracemalloc_mode(port: int) -> None:
    engine_port = free_port()
    alloc_engine = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                         env={"MEMSOAK_ALLOC_MODE": "tracemalloc"})
    status, answer = http(alloc_engine.hook + "/snapshots/warmup", "POST")
    assert status == 200 and answer["tracing_started"] is True and answer["traceback_frames"] == 1
    health = http(alloc_engine.hook + "/health")[1]
    assert health["tracing"] is True and health["tracemalloc_frames"] == 1
    diff = _diff_after_planting(alloc_engine)
    assert (diff["by_size"][0]["file"], diff["by_size"][0]["line"]) == (ALLOC_ENGINE, PLANTED_LINE)


def test_unknown_labels_and_bad_requests_get_a_one_line_error(alloc_engine) -> None:
    status, answer = http(alloc_engine.hook + "/diff?base=nope&head=also")
    assert status == 404 and "POST /snapshots/nope" in answer["error"]
    status, answer = http(alloc_engine.hook + "/diff?base=x")
    assert status == 400 and "base=L1&head=L2" in answer["error"]
    status, answer = http(alloc_engine.hook + "/snapshots/bad%20label", "POST")
    assert status == 400 and "label" in answer["error"]
    status, answer = http(alloc_engine.hook + "/samples?since=abc")
    assert status == 400 and "since" in answer["error"]
    assert http(alloc_engine.hook + "/nothing")[0] == 404


def test_type_census_and_its_diff(alloc_engine) -> None:
    status, census = http(alloc_engine.hook + "/types?top=5")
    assert status == 200 and census["objects"] > 1000 and len(census["by_type"]) == 5
    assert census["by_type"][0]["count"] >= census["by_type"][-1]["count"]
    assert http(alloc_engine.hook + "/types/before", "POST")[1]["objects"] > 1000
    http(alloc_engine.engine + "/alloc?n=2500")
    assert http(alloc_engine.hook + "/types/after", "POST")[0] == 200
    status, diff = http(alloc_engine.hook + "/types/diff?base=before&head=after&top=3")
    assert status == 200
    assert diff["by_type"][0]["type"] == "__main__.Planted" and diff["by_type"][0]["count_diff"] >= 2500


def _rss_step_of_a_snapshot(port: int, env: dict) -> int:
    """RSS of the first sample after POST /snapshots minus that of the last sample before it."""
    engine_port = free_port()
    started = start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port,
                    options=["--tracemalloc-frames", "1"], env=env)
    http(started.engine + "/alloc?n=60000")
    time.sleep(0.5)  # let a sample see the allocation
    last_before = http(started.hook + "/samples?since=0")[1]["samples"][-1]
    assert http(started.hook + "/snapshots/one", "POST")[0] == 200
    answered_at = time.time()
    after = wait_for(lambda: [s for s in http(started.hook + f"/samples?since={last_before['seq']}")[1]
                              ["samples"] if s["t_wall"] > answered_at], what="a sample after it")
    return after[0]["rss_bytes"] - last_before["rss_bytes"]


@pytest.mark.slow
def test_rss_step_of_a_snapshot_is_trimmed(port: int) -> None:
    trimmed = _rss_step_of_a_snapshot(port, {})
    untrimmed = _rss_step_of_a_snapshot(free_port(), {"MEMSOAK_TRIM_AFTER_SNAPSHOT": "0"})
    print("rss step of a snapshot: trimmed", trimmed, "untrimmed", untrimmed)
    assert untrimmed > 10_000_000  # the transient the trim is for is real
    assert trimmed < untrimmed / 2
