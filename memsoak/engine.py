"""Start the demo engine under `memsoak-run` on free loopback ports, wait for it, stop it cleanly.

Used by `memsoak demo` and by the tests. The engine runs in its own process group so stopping it
(SIGTERM, which memsoak-run forwards, then SIGKILL after a grace period) leaves no orphans.
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
    tracemalloc_frames: int = 1
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
        engine = [sys.executable, "-m", "demo_engine", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.leaks:
            engine += ["--leaks", ",".join(self.leaks)]
        return [sys.executable, "-m", "profiler.run", "--host", "127.0.0.1", "--port", str(self.hook_port),
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
                                  f"starting; check the --leak values and its log")
            if self._answers(f"{self.url}/api/health") and self._answers(f"{self.hook_url}/health"):
                return self
            time.sleep(0.2)
        self.stop()
        raise EngineError(f"the demo engine did not answer on {self.url} within {timeout_s:.0f} s")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/api/health", timeout=5).json()

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the group (memsoak-run forwards it to the engine), SIGKILL after the grace period."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "DemoEngine":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()
