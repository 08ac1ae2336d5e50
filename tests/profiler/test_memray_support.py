"""--memray FILE: every Python process tracked, and memray's reports written next to FILE."""
import json
import signal
import sys
from pathlib import Path

import pytest

from hookhelp import http, start
from memsoak.profiler import memray_support


@pytest.mark.slow
def test_memray_run_writes_capture_and_all_reports(port: int, tmp_path: Path) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(
        "import time\n"
        "KEPT = []\n"
        "def leak_planted_blocks():\n"
        "    for _ in range(2000):\n"
        "        KEPT.append(bytearray(4096))\n"
        "leak_planted_blocks()\n"
        "time.sleep(60)\n")
    capture = tmp_path / "engine.bin"
    started = start([sys.executable, str(script)], port, options=["--memray", str(capture)])
    assert http(started.hook + "/health")[1]["pid"] != started.proc.pid
    started.proc.send_signal(signal.SIGTERM)
    assert started.proc.wait(timeout=120) == 128 + signal.SIGTERM
    err = started.proc.stderr.read()
    for suffix in memray_support.OUTPUTS.values():
        out = Path(str(capture) + suffix)
        assert out.exists() and out.stat().st_size > 0, (suffix, err)
    stats = json.loads(Path(str(capture) + ".stats.json").read_text())
    assert stats["metadata"]["python_allocator"] == "malloc"  # leaks right by default
    assert "leak_planted_blocks" in Path(str(capture) + ".flamegraph-leaks.html").read_text()


def test_existing_capture_is_refused_before_starting(tmp_path: Path) -> None:
    import subprocess
    from hookhelp import MEMSOAK_RUN
    capture = tmp_path / "old.bin"
    capture.write_bytes(b"x")
    done = subprocess.run([*MEMSOAK_RUN, "--memray", str(capture), "--", sys.executable, "-c", "pass"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "exists" in done.stderr and "Traceback" not in done.stderr


def test_captures_finds_per_process_files_only(tmp_path: Path) -> None:
    base = tmp_path / "e.bin"
    for name in ("e.bin", "e.bin.123", "e.bin.123.456", "e.bin.stats.txt", "e.bin.123.table.html"):
        (tmp_path / name).write_text("x")
    assert [Path(p).name for p in memray_support.captures(str(base))] == ["e.bin", "e.bin.123",
                                                                            "e.bin.123.456"]
