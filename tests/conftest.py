"""Shared fixtures: a real PostgreSQL for the tests that need one, and free loopback ports.

`.ci/run` starts a throwaway cluster and exports MEMSOAK_TEST_DATABASE_URL. Without it, the
`postgres_url` fixture starts its own throwaway cluster from the local PostgreSQL binaries (as the
`postgres` user when running as root, since initdb refuses root). With neither, the test is skipped
locally and fails under CI, so a CI run can never pass by skipping PostgreSQL.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(path, "initdb").exists():
            return Path(path)
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.fixture(scope="session")
def postgres_url():
    url = os.environ.get("MEMSOAK_TEST_DATABASE_URL")
    if url:
        yield url
        return
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: set MEMSOAK_TEST_DATABASE_URL (see .ci/run)")
        pytest.skip("no PostgreSQL binaries and no MEMSOAK_TEST_DATABASE_URL")
    datadir = Path(tempfile.mkdtemp(prefix="memsoak-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    pg_port = free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-w", "-l",
                                 str(datadir / "log"), "-o",
                                 f"-p {pg_port} -k {datadir} -c listen_addresses=127.0.0.1",
                                 "start"]), check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(pg_port)],
                                   capture_output=True)
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(datadir, ignore_errors=True)
