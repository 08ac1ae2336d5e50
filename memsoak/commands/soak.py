"""`memsoak soak [OPTIONS] -- ENGINE COMMAND ...`: soak your own engine with one command.

Starts ENGINE COMMAND under `memsoak-run` (the hook in every Python process it starts), waits until
the engine answers at --host + --ready-path and the hook at its /health (bounded by
--start-timeout-s, and it says what it waits for), runs a headless Locust soak with the shipped
locustfiles and the memsoak plugin, stops the engine, and exits with the run's code (0 pass, 10 leak,
11 RSS limit, 12 engine lost, 13 bad configuration). An engine whose hook cannot start (an
interpreter that cannot import it, or off Linux one without psutil) is never soaked unhooked: that
is exit 13 with the reason.

Options soak does not know itself (`--api-key`, `--extra-headers`, `--rss-limit-mb`, any Locust
option; `memsoak options` lists memsoak's) go to Locust unchanged.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests

from memsoak import locustfiles
from memsoak.commands.demo import duration_s
from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG
from memsoak.contract import MB, engine_rss
from memsoak.engine import free_port
from memsoak.rundir import new_run_id

NAME = "soak"
HELP = "soak your own engine: start it under the hook, load it, stop it, exit with the verdict's code"
ACCEPTS_EXTRA = True  # unknown options go to Locust (see memsoak/cli.py)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HOOK_FAILED = "memsoak hook: not started"  # memsoak/profiler/boot/sitecustomize.py's line
HOOK_GRACE_S = 15.0  # after the engine answers, how long its hook may still take
RSS_LIMIT_FACTOR = 3    # the default RSS limit: this many times the engine's starting RSS ...
RSS_LIMIT_FLOOR_MB = 512  # ... and never below the harness's own default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = "memsoak soak [OPTIONS] [LOCUST/MEMSOAK OPTIONS] -- ENGINE COMMAND ..."
    parser.add_argument("--host", default="http://127.0.0.1:8000",
                        help="where the engine listens once started (loopback only; default %(default)s)")
    parser.add_argument("--ready-path", default="/api/health",
                        help="path that answers (any status below 500) once the engine is up (default %(default)s)")
    parser.add_argument("--start-timeout-s", type=float, default=120.0,
                        help="how long to wait for the engine and its hook to answer (default %(default)g)")
    parser.add_argument("--duration", type=duration_s, default=3600,
                        help="how long the soak runs: 120, 90s, 30m, 24h (default 1h)")
    parser.add_argument("--users", type=int, default=10, help="concurrent chat users (default %(default)s)")
    parser.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second (default %(default)g)")
    parser.add_argument("--results", default="results", help="where run directories go (default %(default)s/)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between memory samples (default %(default)g)")
    parser.add_argument("--tracemalloc-frames", type=int, default=0,
                        help="0 (default): the hook's sampled allocation tracker names leaking lines at a "
                             "few percent of the engine's time; N > 0: exact tracemalloc with N frames from "
                             "the start, which slows the engine 2-4x")
    parser.add_argument("--hook-port", type=int, default=0, help="port of the hook (default: a free one)")
    parser.add_argument("--stop-grace-s", type=float, default=30.0,
                        help="seconds between SIGTERM and SIGKILL when stopping the engine (default %(default)g)")
    parser.add_argument("--sweep", action="store_true",
                        help="use the mix-sweep load shape (phases that vary the action mix)")


class StartError(RuntimeError):
    """The engine (or its hook) did not come up; the message says what and where to look."""


class Engine:
    """ENGINE COMMAND under memsoak-run, in its own process group, output into a log file."""

    def __init__(self, command: list[str], args: argparse.Namespace, log_path: Path) -> None:
        self.command = command
        self.args = args
        self.log_path = log_path
        self.hook_port = args.hook_port or free_port()
        self.hook_url = f"http://127.0.0.1:{self.hook_port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "memsoak.profiler.run", "--host", "127.0.0.1", "--port", str(self.hook_port),
               "--interval", str(self.args.interval), "--tracemalloc-frames", str(self.args.tracemalloc_frames),
               "--grace", str(self.args.stop_grace_s), "--", *self.command]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def hook_failure(self) -> str | None:
        try:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if HOOK_FAILED in line:
                    return line.strip()
        except OSError:
            pass
        return None

    def wait_ready(self, ready_url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        answered_at: float | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise StartError(f"the engine exited with status {self.process.returncode} before answering; "
                                 f"its log ends: {self.log_tail() or '(empty)'}")
            if failure := self.hook_failure():
                raise StartError(f"the hook could not start inside the engine, so it is not soaked unhooked: "
                                 f"{failure}. Fix it, or make the hook importable by the engine's own interpreter "
                                 f"(the one named above): `<venv>/bin/pip install memsoak` there puts the hook "
                                 f"and psutil in its environment")
            if answered_at is None and _answers(ready_url, any_below_500=True):
                answered_at = time.monotonic()
            if answered_at is not None:
                if _answers(f"{self.hook_url}/health"):
                    return
                if time.monotonic() - answered_at > HOOK_GRACE_S:
                    raise StartError(f"the engine answers at {ready_url} but its hook does not at "
                                     f"{self.hook_url}/health: is the engine a Python process started by "
                                     f"the command itself? Its log ends: {self.log_tail()}")
            time.sleep(0.25)
        raise StartError(f"the engine did not answer at {ready_url} within {timeout_s:g} s (check --host, "
                         f"--ready-path and --start-timeout-s); its log ends: {self.log_tail() or '(empty)'}")

    def starting_rss(self) -> int | None:
        """The engine's RSS (its whole process tree) in the newest sample of its hook."""
        try:
            answer = requests.get(f"{self.hook_url}/samples", params={"since": 0}, timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        samples = answer.get("samples") or []
        if not samples:
            return None
        last = samples[-1]
        value = engine_rss(last)
        return int(value) if value else None

    def stop(self) -> None:
        """SIGTERM the group (memsoak-run forwards it), then SIGKILL what is left after the grace."""
        proc = self.process
        if proc is None:
            return
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=self.args.stop_grace_s + 5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for leftover in tree:
            try:
                leftover.kill()
            except psutil.NoSuchProcess:
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def _answers(url: str, any_below_500: bool = False) -> bool:
    try:
        status = requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return False
    return status < 500 if any_below_500 else status == 200


def locust_command(args: argparse.Namespace, engine: Engine, run_id: str) -> list[str]:
    folder = Path(locustfiles.__file__).parent
    files = str(folder) + (f",{folder / '_mix_sweep.py'}" if args.sweep else "")
    return [sys.executable, "-m", "locust", "-f", files, "--headless", "--host", args.host.rstrip("/"),
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration}s",
            "--hook-url", engine.hook_url, "--results-dir", args.results, "--run-id", run_id,
            "--sample-interval-s", str(args.interval),
            "--only-summary", *getattr(args, "extra", [])]


def rss_limit_given(args: argparse.Namespace) -> bool:
    extra = getattr(args, "extra", [])
    return (any(a == "--rss-limit-mb" or a.startswith("--rss-limit-mb=") for a in extra)
            or "MEMSOAK_RSS_LIMIT_MB" in os.environ or any(a == "--config" or a.startswith("--config=")
                                                          for a in extra) or Path("locust.conf").exists())


def relative_rss_limit(start_bytes: int) -> int:
    """The RSS limit in MB for an engine that starts at `start_bytes`: 3x, at least 512, in 100s."""
    return max(RSS_LIMIT_FLOOR_MB, int(-(-RSS_LIMIT_FACTOR * start_bytes / MB // 100) * 100))


def check(args: argparse.Namespace) -> str | None:
    if not getattr(args, "engine_command", None):
        return "nothing to start: give the engine's command after --, e.g. -- uvicorn app:app --port 8000"
    host = urlsplit(args.host)
    if host.scheme not in ("http", "https") or host.hostname not in LOOPBACK:
        return f"--host {args.host}: load goes to loopback only, e.g. http://127.0.0.1:8000"
    if args.users < 1 or args.spawn_rate <= 0 or args.interval <= 0 or args.duration <= 0:
        return "--users, --spawn-rate, --interval and --duration must be positive"
    if args.start_timeout_s <= 0:
        return "--start-timeout-s must be positive"
    return None


def run(args: argparse.Namespace) -> int:
    if problem := check(args):
        print(f"memsoak soak: {problem}", file=sys.stderr)
        return BAD_CONFIG
    run_id = new_run_id()
    Path(args.results).mkdir(parents=True, exist_ok=True)
    log_path = Path(args.results) / f"{run_id}-engine.log"
    engine = Engine(list(args.engine_command), args, log_path)
    ready_url = args.host.rstrip("/") + args.ready_path
    print(f"memsoak soak: starting `{' '.join(args.engine_command)}` under the hook (log {log_path}); waiting up "
          f"to {args.start_timeout_s:g} s for {ready_url} and the hook at {engine.hook_url}/health", flush=True)
    engine.start()
    locust: subprocess.Popen | None = None
    try:
        try:
            engine.wait_ready(ready_url, args.start_timeout_s)
        except StartError as exc:
            print(f"memsoak soak: {exc}", file=sys.stderr, flush=True)
            return BAD_CONFIG
        except KeyboardInterrupt:
            print("memsoak soak: interrupted before the soak began; engine stopped", file=sys.stderr, flush=True)
            return BAD_CONFIG
        if not rss_limit_given(args) and (start := engine.starting_rss()):
            # A real engine may start at 300 MB and grow 100 MB once tracing begins: the fixed
            # default would stop its soak. Relative to where this engine starts instead.
            limit = relative_rss_limit(start)
            args.extra = [*getattr(args, "extra", []), "--rss-limit-mb", str(limit)]
            print(f"memsoak soak: the engine starts at {start / MB:.0f} MB RSS: --rss-limit-mb {limit} "
                  f"({RSS_LIMIT_FACTOR}x, at least {RSS_LIMIT_FLOOR_MB}; give --rss-limit-mb to choose)", flush=True)
        print(f"memsoak soak: engine up; soaking for {args.duration} s with {args.users} users", flush=True)
        locust = subprocess.Popen(locust_command(args, engine, run_id))
        signal.signal(signal.SIGTERM, lambda _s, _f: locust.send_signal(signal.SIGTERM) if locust else None)
        try:
            code = locust.wait()
        except KeyboardInterrupt:
            code = locust.wait(timeout=180)
    finally:
        if locust is not None and locust.poll() is None:
            locust.kill()
            locust.wait(timeout=10)
        engine.stop()
    run_dir = Path(args.results) / run_id
    if not (run_dir / "run.json").exists():
        # Locust stopped before the soak began (an option it refused, an unreachable hook): no
        # evidence was gathered, so this is never a pass.
        print(f"memsoak soak: the soak never started (Locust exit {code}: see its message above); "
              f"engine stopped", file=sys.stderr, flush=True)
        return BAD_CONFIG
    report = run_dir / "report.html"
    print(f"memsoak soak: engine stopped; report {report if report.exists() else report.parent} "
          f"(exit code {code})", flush=True)
    return code
