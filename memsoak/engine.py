"""Start the demo engine under `memsoak-run` on free loopback ports, wait for it, stop it cleanly.

Used by `memsoak demo` and by the tests. memsoak-run starts the engine in a session of its own, so
stopping signals memsoak-run (SIGTERM, which it forwards) and then SIGKILLs whatever of the tree is
left after a grace period: no orphans either way.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

import psutil
import requests


class EngineError(RuntimeError):
    """The engine did not start; the message is one line naming what to check."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DemoEngine:
    leaks: list[str] = field(default_factory=list)
    port: int = 0
    hook_port: int = 0
    interval_s: float = 1.0
    tracemalloc_frames: int = 0   # 0: the sampled allocation tracker; N > 0: tracemalloc, N frames
    engine_args: list[str] = field(default_factory=list)
    log: IO[Any] | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.hook_port}"

    def command(self) -> list[str]:
        engine = [sys.executable, "-m", "memsoak.demo_engine", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.leaks:
            engine += ["--leaks", ",".join(self.leaks)]
        return [sys.executable, "-m", "memsoak.profiler.run", "--host", "127.0.0.1", "--port", str(self.hook_port),
                "--interval", str(self.interval_s), "--tracemalloc-frames", str(self.tracemalloc_frames),
                "--", *engine, *self.engine_args]

    def start(self, timeout_s: float = 60.0) -> "DemoEngine":
        self.port = self.port or free_port()
        self.hook_port = self.hook_port or free_port()
        out = self.log if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"the demo engine exited with status {self.process.returncode} while "
                                  f"starting: {self._last_log_line() or 'see its log'}")
            if self._answers(f"{self.url}/api/health") and self._answers(f"{self.hook_url}/health"):
                return self
            time.sleep(0.2)
        self.stop()
        raise EngineError(f"the demo engine did not answer on {self.url} within {timeout_s:.0f} s")

    def _last_log_line(self) -> str:
        """The last line memsoak-run or the engine wrote (names the bad flag), when logged to a file."""
        name = getattr(self.log, "name", None)
        if not isinstance(name, str):
            return ""
        try:
            self.log.flush()  # type: ignore[union-attr]
            lines = [line.strip() for line in open(name, errors="replace").read().splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/api/health", timeout=5).json()

    def engine_processes(self) -> list[psutil.Process]:
        """The engine's processes under memsoak-run (where the hook lives)."""
        if self.process is None:
            return []
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_engine(self) -> None:
        """SIGKILL the engine itself, hook included: a crash with no goodbye (used by tests)."""
        for child in self.engine_processes():
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM memsoak-run (it forwards it to the engine); SIGKILL the whole tree after the grace."""
        proc = self.process
        if proc is None:
            return
        tree = self.engine_processes()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=grace_s)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for leftover in [*tree, psutil.Process(proc.pid) if proc.poll() is None else None]:
            if leftover is None:
                continue
            try:
                leftover.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=5)
        if proc.poll() is None:
            proc.wait(timeout=5)

    def __enter__(self) -> "DemoEngine":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()
