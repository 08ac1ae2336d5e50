"""Helpers and fixtures for the Locust side: the real demo engine under memsoak-run, real Locust.

Nothing here imports locust or gevent: Locust always runs as a child process, so the pytest process
is never monkey-patched (Playwright's sync API would break under it). Every process started here is
in its own process group and killed at teardown.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import locustfiles
from memsoak.engine import DemoEngine

LOCUSTFILES = Path(locustfiles.__file__).parent
# Short soaks by default; the clean acceptance run has its own length (MEMSOAK_TEST_CLEAN_S).
SOAK_S = int(os.environ.get("MEMSOAK_TEST_SOAK_S", "30"))
FAST_MIX = ["--think-min-s", "0.1", "--think-max-s", "0.5"]
# The clean acceptance soak (issue 3: two minutes); it runs in the background while the other tests
# run, and its test is ordered last (see conftest.py).
CLEAN_S = int(os.environ.get("MEMSOAK_TEST_CLEAN_S", "120"))
CLEAN_TEST = "test_clean_run_passes_and_fills_the_run_directory"


class Procs:
    """Child processes started by a test, each in its own group, all killed at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, Any]] = []

    def start(self, cmd: list[str], name: str, **kwargs: Any) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=kwargs.pop("cwd", self.folder), **kwargs)
        proc.log_path = self.folder / f"{name}.log"  # type: ignore[attr-defined]
        self.started.append((proc, log))
        return proc

    def kill_all(self) -> None:
        for proc, log in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
            log.close()


def output(proc: subprocess.Popen) -> str:
    return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


def wait(proc: subprocess.Popen, timeout_s: float) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"process did not exit within {timeout_s:.0f} s; output:\n{output(proc)[-3000:]}")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    found = Procs(tmp_path)
    try:
        yield found
    finally:
        found.kill_all()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Callable[..., DemoEngine]]:
    """Factory: a real demo engine under memsoak-run, with planted leaks if asked."""
    started: list[DemoEngine] = []
    logs = []

    def start(leaks: list[str] | None = None, **kwargs: Any) -> DemoEngine:
        log = (tmp_path / f"engine-{len(started)}.log").open("w")
        logs.append(log)
        demo = DemoEngine(leaks=list(leaks or []), log=log, **kwargs)
        started.append(demo)
        return demo.start()

    try:
        yield start
    finally:
        for demo in started:
            demo.stop(grace_s=10)
        for log in logs:
            log.close()


# Set while Scenarios.close() ends what is still running, so their waits give up at once.
CLOSING = threading.Event()

# At most this many scenarios run at once (each is an engine and one to three Locust processes):
# enough to hide their waiting, few enough that a 2-core machine is not swamped at start-up.
AT_ONCE = 6


class Scenarios:
    """Independent real runs (engine + Locust) driven at once, each in a thread of its own.

    Most of a real run is waiting (the run time, the engine's samples), so runs that share nothing
    overlap instead of adding up. Each scenario gets its own folder, `Procs` and engines, all
    stopped as soon as it ends; a test reads its outcome with `result(name)`, which re-raises that
    scenario's own assertion error.
    """

    def __init__(self, folder: Path, at_once: int = 8) -> None:
        self.folder = folder
        self.procs: dict[Path, Procs] = {}
        self.engines: dict[Path, list[tuple[DemoEngine, Any]]] = {}
        self.futures: dict[str, Future] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=max(1, at_once), thread_name_prefix="scenario")

    def engine(self, folder: Path, leaks: list[str] | None = None, **kwargs: Any) -> DemoEngine:
        """A demo engine under memsoak-run for the scenario whose folder this is."""
        with self.lock:
            mine = self.engines.setdefault(folder, [])
            log = (folder / f"engine-{len(mine)}.log").open("w")
            demo = DemoEngine(leaks=list(leaks or []), log=log, **kwargs)
            mine.append((demo, log))
        return demo.start()

    def start(self, name: str, scenario: Callable[["Scenarios", Procs, Path], Any]) -> None:
        folder = self.folder / name
        folder.mkdir()
        self.procs[folder] = Procs(folder)
        self.futures[name] = self.pool.submit(self._run, scenario, folder)

    def _run(self, scenario: Callable[["Scenarios", Procs, Path], Any], folder: Path) -> Any:
        try:
            return scenario(self, self.procs[folder], folder)
        finally:
            self._clean(folder)

    def _clean(self, folder: Path) -> None:
        self.procs[folder].kill_all()
        with self.lock:
            started = self.engines.pop(folder, [])
        for demo, log in started:
            demo.stop(grace_s=10)
            log.close()

    def result(self, name: str, timeout_s: float = 600) -> Any:
        return self.futures[name].result(timeout=timeout_s)

    def close(self) -> None:
        """Normally every scenario has ended and cleaned up; after Ctrl-C or a deselected reader,
        killing what is left makes the scenarios still running end at once instead of at their
        timeouts."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        CLOSING.set()
        try:
            for folder in list(self.procs):
                self._clean(folder)
            self.pool.shutdown(wait=True)
            for folder in list(self.procs):
                self._clean(folder)
        finally:
            CLOSING.clear()


@contextmanager
def scenarios(folder: Path, **named: Callable[[Scenarios, Procs, Path], Any]) -> Iterator[Scenarios]:
    """Start every named scenario now; stop everything they started on exit."""
    running = Scenarios(folder, at_once=min(len(named), AT_ONCE))
    try:
        for name, scenario in named.items():
            running.start(name, scenario)
        yield running
    finally:
        running.close()


def locust_cmd(engine: DemoEngine, results: Path, *extra: str, run_time: int | None = SOAK_S,
               users: int = 4, headless: bool = True, files: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", files or str(LOCUSTFILES), "-H", engine.url,
           "--hook-url", engine.hook_url, "--results-dir", str(results), "--run-id", "run",
           "--baseline-s", "5", "--checkpoint-interval-s", "8", "--only-summary", *FAST_MIX]
    if headless:
        cmd += ["--headless", "-u", str(users), "-r", str(users)]
    if run_time:
        cmd += ["-t", f"{run_time}s"]
    return cmd + list(extra)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file that may still be written to (a half-written last line is skipped)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines) - 1:
                raise
    return rows


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if CLOSING.is_set():
            pytest.fail(f"stopped waiting for {what}: the background runs are being closed")
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


class CleanDemo:
    """`memsoak demo --duration CLEAN_S` in the background, once per session.

    tests/conftest.py starts it as soon as the session reaches the first test of the Locust side
    (tests/demo_engine on), so its two minutes overlap those tests; the `clean_demo` fixture starts
    it if nothing did. Stopped (SIGTERM, passed on to its engine) at session end.
    """

    running: "CleanDemo | None" = None

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="memsoak-clean-demo-"))
        self.out_path = self.folder / "demo.out"
        self.out = self.out_path.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "memsoak.cli", "demo", "--duration", str(CLEAN_S),
                                      "--results", str(self.folder / "results")], stdout=self.out,
                                     stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True)

    @classmethod
    def start(cls) -> "CleanDemo":
        if cls.running is None:
            cls.running = cls()
        return cls.running

    @classmethod
    def stop(cls) -> None:
        demo, cls.running = cls.running, None
        if demo is None:
            return
        if demo.proc.poll() is None:
            demo.proc.send_signal(signal.SIGTERM)  # the demo passes it on and stops its engine
            try:
                demo.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(demo.proc.pid, signal.SIGKILL)
                demo.proc.wait(timeout=10)
        demo.out.close()
        if demo.proc.returncode == 0:
            shutil.rmtree(demo.folder, ignore_errors=True)
        else:  # kept for a post-mortem: its stdout, shown by the failing test, names the run directory
            print(f"memsoak tests: the clean demo's files are kept in {demo.folder}", file=sys.stderr)


@pytest.fixture(scope="session")
def clean_demo() -> Iterator[dict[str, Any]]:
    """The background clean demo (started now if tests/conftest.py has not yet); stopped at the end."""
    demo = CleanDemo.start()
    try:
        yield {"proc": demo.proc, "results": demo.folder / "results", "out": demo.out_path}
    finally:
        CleanDemo.stop()
