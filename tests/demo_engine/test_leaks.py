"""Planted leaks: each allocates on its one marked line, reported in health, counted per op."""
from __future__ import annotations

import asyncio
import os
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

from demo_engine import leaks
from demo_engine.settings import LEAK_NAMES


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


def test_every_leak_has_one_marked_site_line() -> None:
    source = Path(leaks.__file__).read_text().splitlines()
    assert set(leaks.SITE_LINES) == set(LEAK_NAMES) == set(leaks.DEFAULT_BYTES) == set(leaks.PER_OP)
    for name, line in leaks.SITE_LINES.items():
        assert source[line - 1].rstrip().endswith(f"# leak-site: {name}")


@pytest.mark.parametrize("name, per", [("session_state", "session"), ("response_cache", "message"),
                                       ("score_history", "message")])
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
                                        "site": f"demo_engine/leaks.py:{leaks.SITE_LINES[name]}"}


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
    script = "from demo_engine import leaks\nfor _ in range(3):\n    leaks.leak_native(3 << 20)\n"
    subprocess.run([sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), "-c", script],
                   check=True, timeout=120, cwd=Path(leaks.__file__).parents[1])
    records = memray.FileReader(str(capture)).get_leaked_allocation_records(merge_threads=True)
    big = [record for record in records if record.size >= 3 * (3 << 20)]
    assert leaks.NATIVE_ALLOCATOR.startswith("sqlite3_malloc64")
    assert len(big) == 1 and big[0].n_allocations == 3
    function, filename, line = big[0].stack_trace()[0]
    assert (function, filename, line) == ("leak_native", leaks.__file__, leaks.SITE_LINES["native"])
