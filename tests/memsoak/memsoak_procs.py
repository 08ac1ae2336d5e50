"""Helpers and fixtures for the Locust side: the real demo engine under memsoak-run, real Locust.

Nothing here imports locust or gevent: Locust always runs as a child process, so the pytest process
is never monkey-patched (Playwright's sync API would break under it). Every process started here is
in its own process group and killed at teardown.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from memsoak import locustfiles
from memsoak.engine import DemoEngine

LOCUSTFILES = Path(locustfiles.__file__).parent
# Short soaks by default; the clean acceptance run has its own length (MEMSOAK_TEST_CLEAN_S).
SOAK_S = int(os.environ.get("MEMSOAK_TEST_SOAK_S", "30"))
FAST_MIX = ["--think-min-s", "0.1", "--think-max-s", "0.5"]
# The clean acceptance soak (issue 3: two minutes): tests/memsoak/commands/test_demo.py.
CLEAN_S = int(os.environ.get("MEMSOAK_TEST_CLEAN_S", "120"))


class Procs:
    """Child processes started by a test, each in its own group, all stopped at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[subprocess.Popen, Any, float]] = []

    def start(self, cmd: list[str], name: str, term_grace_s: float = 0, **kwargs: Any) -> subprocess.Popen:
        """`term_grace_s`: at teardown, SIGTERM first and wait that long (a process that stops
        children of its own, like `memsoak demo`), then kill its group."""
        log = (self.folder / f"{name}.log").open("w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=kwargs.pop("cwd", self.folder), **kwargs)
        proc.log_path = self.folder / f"{name}.log"  # type: ignore[attr-defined]
        self.started.append((proc, log, term_grace_s))
        return proc

    def kill_all(self) -> None:
        for proc, log, term_grace_s in self.started:
            if proc.poll() is None and term_grace_s:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=term_grace_s)
                except subprocess.TimeoutExpired:
                    pass
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


# Set while a background run is closed before it ended, so its waits give up at once.
CLOSING = threading.Event()


class Background:
    """One real run (engine, Locust, ...) going on in a thread of its own while other tests run.

    `func(run, procs, folder)` drives the run and returns what its test asserts on; `result()`
    waits for it and returns that, or re-raises the run's own error (a failed wait, a skip). The
    processes in `procs` and the engines from `engine()` are stopped as soon as the run ends.
    """

    def __init__(self, name: str, func: Callable[["Background", Procs, Path], Any], folder: Path,
                 gate: threading.Semaphore) -> None:
        self.name, self.folder = name, folder
        self.procs = Procs(folder)
        self.engines: list[tuple[DemoEngine, Any]] = []
        self.lock = threading.Lock()
        self.future: Future = Future()
        self.took_s: float | None = None
        self.thread = threading.Thread(target=self._run, args=(func, gate), name=f"run-{name}", daemon=True)
        self.thread.start()

    def _run(self, func: Callable[["Background", Procs, Path], Any], gate: threading.Semaphore) -> None:
        with gate:
            if not self.future.set_running_or_notify_cancel():
                return
            started = time.monotonic()
            try:
                self.future.set_result(func(self, self.procs, self.folder))
            except BaseException as error:  # noqa: BLE001  (pytest's fail/skip are BaseExceptions)
                self.future.set_exception(error)
            finally:
                self.took_s = time.monotonic() - started
                self._clean()
                log = os.environ.get("MEMSOAK_TEST_RUN_TIMES")  # for measuring the suite
                if log:
                    with open(log, "a") as handle:
                        handle.write(f"{self.name} {self.took_s:.1f}\n")

    def engine(self, folder: Path | None = None, leaks: list[str] | None = None, **kwargs: Any) -> DemoEngine:
        """A demo engine under memsoak-run for this run (stopped when the run ends)."""
        with self.lock:
            log = ((folder or self.folder) / f"engine-{len(self.engines)}.log").open("w")
            demo = DemoEngine(leaks=list(leaks or []), log=log, **kwargs)
            self.engines.append((demo, log))
        return demo.start()

    def _clean(self) -> None:
        self.procs.kill_all()
        with self.lock:
            started, self.engines = self.engines, []
        for demo, log in started:
            demo.stop(grace_s=10)
            log.close()

    def result(self, timeout_s: float = 600) -> Any:
        return self.future.result(timeout=timeout_s)

    def close(self) -> None:
        """Normally the run has ended and cleaned up already; after Ctrl-C or -x, what is left is
        killed, so the run's waits end at once instead of at their timeouts."""
        if self.future.cancel() or self.future.done():
            return
        CLOSING.set()
        try:
            self._clean()
            self.thread.join(timeout=120)
            self._clean()
        finally:
            CLOSING.clear()


# Background runs, by (test module, name): decorated with @background_run in the test modules.
REGISTERED: dict[tuple[str, str], tuple[Callable[..., Any], str]] = {}
STARTED: dict[tuple[str, str], Background] = {}
# At most this many runs of a group at once (each is an engine and one to three Locust processes):
# enough to hide their waiting, few enough that a 2-core machine is not swamped at start-up.
AT_ONCE = {"plugin": 6, "faults": 3, "clean_demo": 1}
GATES = {group: threading.BoundedSemaphore(n) for group, n in AT_ONCE.items()}


def _start(key: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Background:
    if key not in STARTED:
        func, group = REGISTERED[key]
        STARTED[key] = Background(key[1], func, tmp_path_factory.mktemp(key[1]), GATES[group])
    return STARTED[key]


def background_run(group: str) -> Callable[[Callable[..., Any]], Any]:
    """Make `func(run, procs, folder)` a session fixture of the same name whose value is its
    `Background` handle: the run starts when the fixture is first needed (or earlier, with every
    other run its directory's selected tests use: `background_runs`), and the test that
    uses it reads `handle.result()` and holds the assertions."""

    def decorate(func: Callable[..., Any]) -> Any:
        key = (func.__module__, func.__name__)
        REGISTERED[key] = (func, group)

        @pytest.fixture(scope="session", name=func.__name__)
        def handle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
            running = _start(key, tmp_path_factory)
            try:
                yield running
            finally:
                running.close()

        handle.__doc__ = func.__doc__
        return handle

    return decorate


@contextmanager
def background_runs(request: pytest.FixtureRequest, under: Path) -> Iterator[None]:
    """Start now every background run that a selected test under `under` uses (by its fixture
    names), so the runs' waiting overlaps instead of adding up; on exit, stop any still going
    (a test that never ran after -x or Ctrl-C)."""
    started = []
    for item in request.session.items:
        module = getattr(item, "module", None)
        if module is None or under not in item.path.resolve().parents:
            continue
        for name in item.fixturenames:
            if (module.__name__, name) in REGISTERED:
                started.append(_start((module.__name__, name), request.getfixturevalue("tmp_path_factory")))
    try:
        yield
    finally:
        for running in started:
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
            pytest.fail(f"stopped waiting for {what}: the background run is being closed")
        value = check()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
