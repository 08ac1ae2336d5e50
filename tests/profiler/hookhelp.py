"""Helpers for the hook's tests (imported as `hookhelp`): start a real engine under memsoak-run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest


ENGINES = Path(__file__).parent / "engines"
ALLOC_ENGINE = str(ENGINES / "alloc_engine.py")
MEMSOAK_RUN = [sys.executable, "-m", "memsoak.profiler.run"]


def http(url: str, method: str = "GET", headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError, IndexError) as error:
            last_error = error
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def port_is_free(port: int) -> bool:
    return not any(conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
                   for conn in psutil.net_connections("tcp"))


class Started:
    def __init__(self, proc: subprocess.Popen, hook_port: int, engine_port: int | None) -> None:
        self.proc, self.hook_port, self.engine_port = proc, hook_port, engine_port
        self.hook = f"http://127.0.0.1:{hook_port}"
        self.engine = f"http://127.0.0.1:{engine_port}" if engine_port else None

    def tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            return []


def start(command: list[str], hook_port: int, options: list[str] | None = None,
          env: dict[str, str] | None = None, engine_port: int | None = None,
          wait: bool = True) -> Started:
    """memsoak-run OPTIONS -- COMMAND in its own session; waits for /health unless told not to."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("MEMSOAK_INTERVAL", "0.2")
    proc = subprocess.Popen([*MEMSOAK_RUN, "--port", str(hook_port), *(options or []), "--", *command],
                            env=full_env, start_new_session=True, cwd=str(Path(__file__).parents[2]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = Started(proc, hook_port, engine_port)
    _RUNNING.append(proc)
    if wait:
        wait_for(lambda: proc.poll() is None and http(started.hook + "/health", timeout=2)[0] == 200,
                 what=f"hook on {hook_port} (memsoak-run rc={proc.poll()})")
        if engine_port:
            wait_for(lambda: http(started.engine + "/alloc?n=0", timeout=2)[0] == 200, what="engine")
    return started


_RUNNING: list[subprocess.Popen] = []


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGTERM first (memsoak-run then removes its peer directory), SIGKILL what is left."""
    try:
        members = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        members = []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    for member in members:
        try:
            member.kill()
        except psutil.Error:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    while _RUNNING:
        kill_tree(_RUNNING.pop())


@pytest.fixture
def alloc_engine(port: int) -> Started:
    engine_port = free_port()
    return start([sys.executable, ALLOC_ENGINE, str(engine_port)], port, engine_port=engine_port)
