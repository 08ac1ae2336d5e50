"""Distributed mode against the real engine: a master with two worker processes of its own, and
`--processes 2` (one Locust command that forks its two workers).

The hook is reached through a recording proxy, so the test sees which process polled it; each
worker counts its own requests (worker_counter.py), independently of the master's aggregate. The
two runs share nothing, so each is a background fixture (started with the other runs of
tests/memsoak, conftest.py) and each test waits for its own.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from memsoak.engine import free_port
from memsoak_procs import LOCUSTFILES, Background, Procs, background_run, locust_cmd, output, wait

COUNTER = Path(__file__).with_name("worker_counter.py")
FILES = f"{LOCUSTFILES},{COUNTER}"
# Long enough for several worker stats reports (every 3 s) and hook polls; nothing asserted here
# depends on the verdict, so no checkpoint is needed.
RUN_TIME_S = 12


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


@dataclass
class Run:
    master_pid: int
    code: int
    text: str
    results: Path
    callers: list[str]
    accounts: list[dict]     # each worker's own count of its requests


def _run(run: Background, procs: Procs, folder: Path, processes: bool) -> Run:
    demo = run.engine(folder)
    proxy = RecordingProxy(demo.hook_url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    counts = folder / "counts"
    counts.mkdir()
    env = {**os.environ, "MEMSOAK_TEST_COUNT_DIR": str(counts)}
    try:
        if processes:
            master = procs.start(locust_cmd(demo, folder, "--processes", "2", "--hook-url", proxy.url,
                                            "--checkpoint-interval-s", "0", run_time=RUN_TIME_S, users=6,
                                            files=FILES), "locust", env=env)
            workers = []
        else:
            port = free_port()
            master = procs.start(locust_cmd(demo, folder, "--master", "--expect-workers", "2",
                                            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                                            "--hook-url", proxy.url, "--checkpoint-interval-s", "0",
                                            run_time=RUN_TIME_S, users=6, files=FILES), "master")
            workers = [procs.start([sys.executable, "-m", "locust", "-f", FILES, "--worker", "--master-host",
                                    "127.0.0.1", "--master-port", str(port), "-H", demo.url],
                                   f"worker{i}", env=env) for i in range(2)]
        code = wait(master, 240)
        for worker in workers:
            assert wait(worker, 60) == 0, output(worker)[-2000:]
    finally:
        proxy.shutdown()
        proxy.server_close()
    accounts = [json.loads(p.read_text()) for p in counts.glob("worker-*.json")]
    if workers:
        assert sorted(a["pid"] for a in accounts) == sorted(w.pid for w in workers)
    return Run(master.pid, code, output(master), folder, list(proxy.callers), accounts)


@background_run("plugin")
def workers(run: Background, procs: Procs, folder: Path) -> Run:
    """A master with two worker processes of its own."""
    return _run(run, procs, folder, processes=False)


@background_run("plugin")
def processes(run: Background, procs: Procs, folder: Path) -> Run:
    """One Locust command with --processes 2."""
    return _run(run, procs, folder, processes=True)


def _check_one_report_with_the_workers_counts(run: Run) -> dict:
    # one run directory, one report, written by the master alone
    assert [p.name for p in run.results.iterdir() if p.is_dir() and (p / "run.json").exists()] == ["run"]
    report = json.loads((run.results / "run" / "report.json").read_text())
    assert report["exit_code"] == run.code and run.code in (0, 10), run.text[-3000:]
    assert json.loads((run.results / "run" / "run.json").read_text())["runner"] == "MasterRunner"

    # only the master polled the hook
    assert run.callers and set(run.callers) == {str(run.master_pid)}

    # the report's request counts are the workers' own counts, summed; both workers did work
    assert len(run.accounts) == 2 and all(account["requests"] for account in run.accounts)
    summed = sum((Counter(account["requests"]) for account in run.accounts), Counter())
    reported = {f"{r['method']} {r['name']}": r["num_requests"] for r in report["requests"]}
    assert reported == dict(summed) and sum(summed.values()) > 0
    requests_json = json.loads((run.results / "run" / "requests.json").read_text())
    assert {f"{r['method']} {r['name']}": r["num_requests"] for r in requests_json} == reported
    return report


@pytest.mark.slow
def test_master_and_two_workers(workers: Background) -> None:
    _check_one_report_with_the_workers_counts(workers.result())


@pytest.mark.slow
def test_processes_2_forks_two_workers_and_one_master_measures(processes: Background) -> None:
    run = processes.result()
    _check_one_report_with_the_workers_counts(run)
    # the two workers are the command's own forked children
    assert {account["ppid"] for account in run.accounts} == {run.master_pid}
    assert {account["pid"] for account in run.accounts}.isdisjoint({run.master_pid})
    # the master's exit code is the verdict; the forked workers did not end in error
    assert "Bad response code from worker children" not in run.text
    assert "Traceback" not in run.text
