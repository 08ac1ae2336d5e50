"""The status line at its interval (headless, with and without --only-summary) and the failed-load
hints (a refused key, sustained 429s), in real Locust runs against the real demo engine."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from memsoak.engine import DemoEngine, free_port
from memsoak_procs import Procs, locust_cmd, output, wait, wait_for

INTERVAL_S = 3
RUN_S = 14
LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \S+/INFO/memsoak: memsoak status: "
    r"0:00:\d\d elapsed, 0:00:\d\d left \| \d+ users \| [\d.]+ RPS \| [\d.]+% failed \| "
    r"RSS [\d.]+ MB, heap [\d.]+ MB \| trend RSS (n/a|[+-][\d.]+ MB/h), heap (n/a|[+-][\d.]+ MB/h) \| "
    r"provisional: (warming up until 5 s \(memory fills first; no verdict yet\)|not enough samples after "
    r"warm-up yet|no growth above 10 MB/h since warm-up|growing \((RSS|heap) .* > 10 MB/h since warm-up\))$",
    re.M)
RUNS: dict[str, dict[str, Any]] = {
    "headless": {"engine": "plain", "args": [], "summary": False},
    "summary": {"engine": "plain", "args": [], "summary": True},
    "wrong_key": {"engine": "plain", "args": ["--api-key", "wrong", "--baseline-s", "60"], "summary": True},
    # the low-limit warning is read from a run that lasts (a wrong key now ends the run at once)
    "limited": {"engine": "limited", "args": ["--rss-limit-mb", "90"], "summary": True},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int, str]]]:
    folder = tmp_path_factory.mktemp("status")
    procs = Procs(folder)
    logs = [(folder / f"engine-{n}.log").open("w") for n in ("plain", "limited")]
    engines = {"plain": DemoEngine(log=logs[0]),
               "limited": DemoEngine(log=logs[1], engine_args=["--rate-limit-rps", "2", "--rate-limit-burst", "2"])}
    try:
        for demo in engines.values():
            demo.start()
        started = {}
        for name, spec in RUNS.items():
            cmd = locust_cmd(engines[spec["engine"]], folder / name, "--status-interval-s", str(INTERVAL_S),
                             *spec["args"], run_time=RUN_S)
            if not spec["summary"]:
                cmd.remove("--only-summary")
            started[name] = procs.start(cmd, name)
        yield {name: (wait(proc, 240), output(proc)) for name, proc in started.items()}
    finally:
        procs.kill_all()
        for demo in engines.values():
            demo.stop(grace_s=10)
        for log in logs:
            log.close()


def status_times(text: str) -> list[float]:
    return [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() for m in LINE.finditer(text)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["headless", "summary"])
def test_the_status_line_comes_at_its_interval(runs, name: str) -> None:
    _code, text = runs[name]
    times = status_times(text)
    assert len(times) >= RUN_S // INTERVAL_S - 1, text[-3000:]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(INTERVAL_S - 0.5 <= gap <= INTERVAL_S + 1.5 for gap in gaps), gaps
    assert re.search(r"\| [1-9]\d* users \|", text)
    verdicts = [m.group(0).split("provisional: ")[1] for m in LINE.finditer(text)]
    assert verdicts[0].startswith("warming up until 5 s")  # the first line comes at 3 s, in warm-up
    assert any(v.startswith(("no growth", "growing")) for v in verdicts[1:]), verdicts  # after --baseline-s 5


@pytest.mark.slow
def test_the_memory_tab_shows_the_same_line(engine, procs, tmp_path: Path) -> None:
    demo = engine()
    ui = f"http://127.0.0.1:{free_port()}"
    procs.start(locust_cmd(demo, tmp_path, "--web-host", "127.0.0.1", "--web-port", ui.rsplit(":", 1)[1],
                           "--autostart", "-u", "3", "-r", "3", headless=False, run_time=None), "locust")

    def status_row() -> str | None:
        try:
            rows = requests.get(ui + "/memsoak/memory.json", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        value = next((r["value"] for r in rows if r["signal"] == "Status"), None)
        return value if value and "RSS n/a" not in value and "trend RSS n/a" not in value else None

    line = wait_for(status_row, 60, "a status line with RSS and a trend in the Memory tab")
    assert re.fullmatch(r"memsoak status: 0:00:\d\d elapsed \| 3 users \| .* \| provisional: .*", line), line


@pytest.mark.slow
def test_a_refused_key_names_the_key_and_its_header_and_ends_the_run(runs) -> None:
    code, text = runs["wrong_key"]
    assert code == 13, text[-3000:]   # every first request refused: the run ends early (tests/faults)
    hint = "requests were refused as unauthorized (401/403, or a WebSocket closed with 4401)"
    assert text.count(hint) == 2, text[-3000:]  # once while running, once after the verdict
    assert "--api-key (sent in the header named by --api-key-header, now 'X-API-Key'" in text


@pytest.mark.slow
def test_sustained_429s_suggest_a_per_user_client_identity_and_a_low_limit_warns(runs) -> None:
    _code, text = runs["limited"]
    assert text.count("were rate-limited (HTTP 429)") == 2, text[-3000:]
    assert '--extra-headers "X-Forwarded-For: 10.0.0.{user_index}" (never {uuid} or {rand} there' in text
    assert "requests were refused as unauthorized" not in text
    # the sampled tracker (no tracemalloc tables) starts a demo engine at ~50 MB RSS
    assert re.search(r"--rss-limit-mb 90 is less than 2x the engine's starting RSS \(\d+ MB\)", text)
