"""Distributed mode: a master and two workers as real processes against the real engine.

The hook is reached through a recording proxy, so the test sees which process polled it; each
worker counts its own requests (worker_counter.py), independently of the master's aggregate.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import requests

from memsoak_procs import LOCUSTFILES, locust_cmd, output, wait

COUNTER = Path(__file__).with_name("worker_counter.py")


class RecordingProxy(ThreadingHTTPServer):
    """Forwards every request to the hook and records the harness pid that sent it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.callers: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.callers.append(self.headers.get("X-Memsoak-Harness-Pid", "?"))
                resp = requests.request(self.command, proxy.target + self.path, timeout=120)
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = _forward

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy_to(request) -> Iterator:
    servers: list[RecordingProxy] = []

    def start(target: str) -> RecordingProxy:
        server = RecordingProxy(target)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_master_and_two_workers(engine, procs, proxy_to, tmp_path: Path, port: int) -> None:
    demo = engine()
    proxy = proxy_to(demo.hook_url)
    counts = tmp_path / "counts"
    counts.mkdir()
    files = f"{LOCUSTFILES},{COUNTER}"
    master_cmd = locust_cmd(demo, tmp_path, "--master", "--expect-workers", "2", "--master-bind-host",
                            "127.0.0.1", "--master-bind-port", str(port), "--hook-url", proxy.url,
                            run_time=25, users=6, files=files)
    master = procs.start(master_cmd, "master")
    env = {**os.environ, "MEMSOAK_TEST_COUNT_DIR": str(counts)}
    workers = [procs.start([sys.executable, "-m", "locust", "-f", files, "--worker", "--master-host",
                            "127.0.0.1", "--master-port", str(port), "-H", demo.url],
                           f"worker{i}", env=env) for i in range(2)]
    assert wait(master, 240) in (0, 10), output(master)[-3000:]
    for worker in workers:
        assert wait(worker, 60) == 0, output(worker)[-2000:]

    # only the master polled the hook
    assert proxy.callers and set(proxy.callers) == {str(master.pid)}

    # the report's request counts are the workers' own counts, summed
    accounts = [json.loads(p.read_text()) for p in counts.glob("worker-*.json")]
    assert sorted(a["pid"] for a in accounts) == sorted(w.pid for w in workers)
    summed: dict[str, int] = {}
    for account in accounts:
        for key, n in account["requests"].items():
            summed[key] = summed.get(key, 0) + n
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    reported = {f"{r['method']} {r['name']}": r["num_requests"] for r in report["requests"]}
    assert reported == summed and sum(summed.values()) > 0
    assert all(account["requests"] for account in accounts)  # both workers did work
