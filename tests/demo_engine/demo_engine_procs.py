"""Helpers for the demo engine's tests: a real engine process (optionally under memsoak-run) and a
fresh database for it (a temp SQLite file, or a new schema in the test PostgreSQL server).

Imported as `demo_engine_procs` (a unique name: test directories here are not packages).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "demo-key"
# Fixture params: every storage-dependent test runs on both; PostgreSQL ones carry the marker.
STORAGES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(name: str, module: str) -> list[str]:
    """The console script when installed, else `python -m module` (same code either way)."""
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` (bounded by `timeout`) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")


@dataclass
class RunningEngine:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    hook_url: str | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"X-API-Key": API_KEY, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/api/health", timeout=10).json()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the top process (it stops its own children), wait, then SIGKILL any survivor."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        tree = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    _, alive = psutil.wait_procs(tree, timeout=5)
    for member in alive:
        try:
            member.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)
    if proc.poll() is None:
        proc.wait(timeout=10)


@contextmanager
def engine_process(args: list[str], env: dict[str, str] | None = None,
                   hook_port: int | None = None, hook_args: list[str] | None = None,
                   argv: list[str] | None = None) -> Iterator[RunningEngine]:
    """Start the demo engine (under memsoak-run when `hook_port` is given) and wait for health.

    `argv` replaces the whole engine command (e.g. plain uvicorn); it must serve on the port
    passed back in `RunningEngine.port`, so it is given as a format string `{port}`.
    """
    port = free_port()
    if argv is not None:
        engine_cmd = [part.format(port=port) for part in argv]
    else:
        engine_cmd = [*command("memsoak-demo-engine", "memsoak.demo_engine"), "--port", str(port), *args]
    if hook_port is not None:
        engine_cmd = [*command("memsoak-run", "memsoak.profiler.run"), "--port", str(hook_port),
                      *(hook_args or []), "--", *engine_cmd]
    log_file = tempfile.NamedTemporaryFile(prefix="demo-engine-", suffix=".log", delete=False)
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(engine_cmd, env=full_env, cwd=str(ROOT), stdout=log_file,
                            stderr=subprocess.STDOUT, start_new_session=True)
    running = RunningEngine(f"http://127.0.0.1:{port}", port, proc, Path(log_file.name),
                            f"http://127.0.0.1:{hook_port}" if hook_port else None)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"engine exited with {proc.returncode}:\n{running.log()}")
            return httpx.get(running.url + "/api/health", timeout=2).status_code == 200

        wait_until(ready, 60, f"engine health on port {port}")
        if running.hook_url:
            wait_until(lambda: httpx.get(running.hook_url + "/health", timeout=2).status_code == 200,
                       30, "hook health")
        yield running
    finally:
        _stop(proc)
        log_file.close()
        os.unlink(log_file.name)


@contextmanager
def fresh_database(kind: str, postgres_url: str | None = None) -> Iterator[str]:
    """A DATABASE_URL nobody else uses: a new SQLite file, or a new PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="demo-engine-db-")
        try:
            yield f"sqlite:///{folder}/engine.sqlite3"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    assert postgres_url, "postgresql needs the postgres_url fixture"
    schema = "demo_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def database_for(request: pytest.FixtureRequest, stack: ExitStack) -> str:
    """A fresh DATABASE_URL for a fixture parametrized over STORAGES, cleaned up with `stack`."""
    kind = request.param
    pg_url = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
    return stack.enter_context(fresh_database(kind, pg_url))
