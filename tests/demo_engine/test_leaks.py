"""Planted leaks: each allocates on its one marked line, reported in health, counted per op."""
from __future__ import annotations

import asyncio
import logging
import os
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

from memsoak.demo_engine import leaks
from memsoak.demo_engine.settings import LEAK_NAMES


@pytest.fixture
def clean_leaks() -> Iterator[None]:
    """The leaks are real and module-level: undo them so this test process does not keep them."""
    yield
    leaks._SESSION_STATE.clear()
    leaks._RESPONSE_CACHE.clear()
    leaks._SCORE_HISTORY.clear()
    for fd in leaks._OPEN_FDS:
        os.close(fd)
    leaks._OPEN_FDS.clear()
    leaks._TASKS.clear()
    leaks._SMALL_LIST.clear()
    leaks._FILLING_CACHE.clear()
    leaks._STREAMS.clear()
    leaks._render_reply.cache_clear()
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("demo_engine.message.")]:
        del logging.root.manager.loggerDict[name]


def test_every_leak_has_one_marked_site_line() -> None:
    source = Path(leaks.__file__).read_text().splitlines()
    assert set(leaks.SITE_LINES) == set(LEAK_NAMES) == set(leaks.DEFAULT_BYTES) == set(leaks.PER_OP)
    for name, line in leaks.SITE_LINES.items():
        assert source[line - 1].rstrip().endswith(f"# leak-site: {name}")


@pytest.mark.parametrize("name, per", [("session_state", "session"), ("response_cache", "message"),
                                       ("score_history", "message"), ("lru_cache", "message"),
                                       ("small_append", "message"), ("filling_cache", "message"),
                                       ("async_gen", "message")])
def test_python_leaks_are_the_top_tracemalloc_site(clean_leaks: None, name: str, per: str) -> None:
    planted = leaks.PlantedLeaks({name: 32 * 1024})
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        for index in range(20):
            if per == "session":
                planted.on_session_created(f"s{index}")
            else:
                planted.on_message("s", f"m{index}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    top = after.compare_to(before, "lineno")[0]
    frame = top.traceback[0]
    assert frame.filename == leaks.__file__ and frame.lineno == leaks.SITE_LINES[name]
    assert 20 * 32 * 1024 <= top.size_diff < 1.2 * 20 * 32 * 1024
    assert planted.describe()[name] == {"bytes_per_op": 32 * 1024, "per": per, "ops": 20,
                                        "site": f"memsoak/demo_engine/leaks.py:{leaks.SITE_LINES[name]}"}


def test_fd_leak_opens_one_descriptor_per_session(clean_leaks: None) -> None:
    planted = leaks.PlantedLeaks({"fd": 0})
    before = len(os.listdir("/proc/self/fd"))
    for index in range(5):
        planted.on_session_created(f"s{index}")
    planted.on_message("s0", "m0")  # not a per-message leak
    assert len(os.listdir("/proc/self/fd")) - before == 5


def test_asyncio_task_leak_leaves_one_pending_task_per_session(clean_leaks: None) -> None:
    async def scenario() -> tuple[int, int]:
        planted = leaks.PlantedLeaks({"asyncio_task": 1024})
        before = len(asyncio.all_tasks())
        for index in range(4):
            planted.on_session_created(f"s{index}")
        await asyncio.sleep(0)
        return before, len(asyncio.all_tasks())

    before, after = asyncio.run(scenario())
    assert after - before == 4


def test_no_leak_planted_touches_nothing() -> None:
    planted = leaks.PlantedLeaks({})
    sizes = (len(leaks._SESSION_STATE), len(leaks._RESPONSE_CACHE), len(leaks._SCORE_HISTORY), len(leaks._OPEN_FDS))
    planted.on_session_created("s")
    planted.on_message("s", "m")
    assert planted.describe() == {}
    assert sizes == (len(leaks._SESSION_STATE), len(leaks._RESPONSE_CACHE), len(leaks._SCORE_HISTORY), len(leaks._OPEN_FDS))


def test_native_leak_is_named_by_memray_at_its_site(tmp_path: Path) -> None:
    """Invisible to tracemalloc, but a real C library's malloc: memray's leaks view must find it."""
    import subprocess
    import sys

    import memray

    capture = tmp_path / "native.bin"
    script = "from memsoak.demo_engine import leaks\nfor _ in range(3):\n    leaks.leak_native(3 << 20)\n"
    subprocess.run([sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), "-c", script],
                   check=True, timeout=120, cwd=Path(leaks.__file__).parents[1])
    records = memray.FileReader(str(capture)).get_leaked_allocation_records(merge_threads=True)
    big = [record for record in records if record.size >= 3 * (3 << 20)]
    assert leaks.NATIVE_ALLOCATOR.startswith("sqlite3_malloc64")
    assert len(big) == 1 and big[0].n_allocations == 3
    function, filename, line = big[0].stack_trace()[0]
    assert (function, filename, line) == ("leak_native", leaks.__file__, leaks.SITE_LINES["native"])


def test_logger_leak_is_named_at_the_engine_line_behind_logging(clean_leaks: None) -> None:
    """logging allocates the logger; the innermost frame outside the stdlib is the marked line."""
    from memsoak.reports.stats.attribution import engine_frame

    planted = leaks.PlantedLeaks({"logger": 0})
    tracemalloc.start(16)
    try:
        before = tracemalloc.take_snapshot()
        for index in range(200):
            planted.on_message("s", f"m{index}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = [stat for stat in after.compare_to(before, "traceback") if stat.size_diff > 0]
    inside = [stat for stat in growth if stat.traceback[-1].filename.endswith("logging/__init__.py")]
    assert sum(stat.size_diff for stat in inside) > 200 * 500   # the loggers and handlers themselves
    callers = {engine_frame([f"{f.filename}:{f.lineno}" for f in reversed(stat.traceback)]) for stat in inside}
    assert callers == {f"{leaks.__file__}:{leaks.SITE_LINES['logger']}"}
    kept = [n for n in logging.root.manager.loggerDict if n.startswith("demo_engine.message.")]
    assert len(kept) == 200 and planted.describe()["logger"]["ops"] == 200


def test_filling_cache_is_bounded(clean_leaks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaks, "FILLING_CACHE_ENTRIES", 50)
    planted = leaks.PlantedLeaks({"filling_cache": 16})
    for index in range(120):
        planted.on_message("s", f"m{index}")
    assert len(leaks._FILLING_CACHE) == 50 and "s:m119" in leaks._FILLING_CACHE and "s:m0" not in leaks._FILLING_CACHE


def test_async_gen_leak_keeps_suspended_generators_with_their_buffers(clean_leaks: None) -> None:
    planted = leaks.PlantedLeaks({"async_gen": 2048})
    for index in range(3):
        planted.on_message("s", f"m{index}")
    assert len(leaks._STREAMS) == 3
    for stream in leaks._STREAMS:
        assert stream.ag_frame is not None and len(stream.ag_frame.f_locals["buffer"]) == 2048


def test_lru_cache_leak_misses_on_every_message(clean_leaks: None) -> None:
    planted = leaks.PlantedLeaks({"lru_cache": 64})
    for index in range(10):
        planted.on_message("s", f"m{index}")
    info = leaks._render_reply.cache_info()
    assert info.misses == 10 and info.hits == 0 and info.currsize == 10
