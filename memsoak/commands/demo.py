"""`memsoak demo`: the README's first command, a whole soak against the bundled demo engine.

Starts the demo engine under `memsoak-run` on free loopback ports (optionally with planted leaks),
runs a headless Locust soak with the memsoak plugin against it, prints where the report is, stops
the engine, and exits with the run's code (0 pass, 10 leak, 11 RSS limit, 12 engine lost, 13 bad
configuration). Arguments after `--` go to Locust unchanged and win over the demo's load defaults
(e.g. `-- --think-min-s 0.5 --think-max-s 2` for the locustfiles' own, slower pace).
"""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from memsoak import locustfiles
from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG
from memsoak.contract import LEAK_NAMES, QUICK_RUN_S   # the names DEMO_LEAKS takes in the engine
from memsoak.engine import DemoEngine, EngineError
from memsoak.rundir import new_run_id

NAME = "demo"
HELP = "soak the bundled demo engine (under memsoak-run) and write a report"
# The demo engine's legitimate state is bounded (LRU sessions, response cache). A compressed soak
# cannot tell a bound that is still filling from a leak, so the demo runs the engine with bounds
# small enough to fill during warm-up, as a production engine's would within its first hours.
# Sessions left open leave memory after 30 s instead of the engine's 600 s, also within the soak.
ENGINE_BOUNDS = ["--max-live-sessions", "50", "--cache-entries", "64", "--session-idle-s", "30"]
# A quick soak's sensitivity is set by operations, not minutes: a 64 B/message leak needs
# ~2,500 messages after warm-up to clear the heap's 0.25 MB floor. The locustfiles' own think
# time (0.5-2 s, a human's pace) gives 10 users ~1,100 messages in 5 minutes; 0.1-0.5 s gives
# ~6,000 (docs/real-runs.md). Real engines keep the locustfiles' pace unless asked.
DEMO_LOAD = ["--think-min-s", "0.1", "--think-max-s", "0.5"]
USERS = 10
SPAWN_RATE = 5.0
INTERVAL_S = 1.0
TRACEMALLOC_FRAMES = 0   # the sampled allocation tracker (issue 11); N > 0: tracemalloc mode


def duration_s(text: str) -> int:
    """'90', '90s', '5m', '1h30m' -> seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 120, 90s, 5m or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} is zero: a soak needs a time limit, e.g. 5m")
    return total


def leak(text: str) -> str:
    name, _, size = text.partition(":")
    if name not in LEAK_NAMES:
        raise argparse.ArgumentTypeError(f"unknown leak {name!r}: choose from {', '.join(LEAK_NAMES)}")
    if size and not size.isdigit():
        raise argparse.ArgumentTypeError(f"leak size {size!r} must be a whole number of bytes per operation")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leak", type=leak, action="append", default=[], metavar="NAME[:BYTES]",
                        help=f"plant a leak in the engine (repeatable): {', '.join(LEAK_NAMES)}")
    parser.add_argument("--duration", type=duration_s, default=None,
                        help="how long the soak runs: 120, 90s, 5m, 1h30m (default: --quick, 5 minutes)")
    parser.add_argument("--quick", action="store_true", default=True,
                        help="5-minute smoke soak (the default when --duration is not given)")
    parser.add_argument("--users", type=int, default=USERS, help=f"concurrent chat users (default {USERS})")
    parser.add_argument("--spawn-rate", type=float, default=SPAWN_RATE,
                        help=f"users started per second (default {SPAWN_RATE:g})")
    parser.add_argument("--results", default="results", help="where run directories go (default results/)")
    parser.add_argument("--interval", type=float, default=INTERVAL_S,
                        help=f"seconds between memory samples (default {INTERVAL_S:g})")
    parser.add_argument("--tracemalloc-frames", type=int, default=TRACEMALLOC_FRAMES,
                        help="0 (default): the hook's sampled allocation tracker names leaking lines at a "
                             "few percent of the engine's time; N > 0: exact tracemalloc with N frames "
                             "from the start, which slows the engine 2-4x")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for memsoak-demo-engine (repeatable), e.g. "
                             "--engine-arg=--llm-latency-ms=50; the defaults "
                             f"{' '.join(ENGINE_BOUNDS)} come first and can be overridden")
    parser.add_argument("--sweep", action="store_true",
                        help="use the mix-sweep load shape (phases that vary the action mix)")
    parser.add_argument("locust_args", nargs=argparse.REMAINDER,
                        help="after --: extra Locust/memsoak arguments, passed through; they win over "
                             f"the demo's load {' '.join(DEMO_LOAD)}")


def demo_engine(args: argparse.Namespace, log: Any) -> DemoEngine:
    """The engine as the demo starts it: planted leaks, the bounds first, then --engine-arg."""
    return DemoEngine(leaks=list(args.leak), interval_s=args.interval,
                      tracemalloc_frames=args.tracemalloc_frames, log=log,
                      engine_args=[*ENGINE_BOUNDS, *args.engine_arg])


def locust_command(args: argparse.Namespace, engine: DemoEngine, run_id: str) -> list[str]:
    """Headless Locust with the plugin; the demo's load first so that arguments after -- win."""
    folder = Path(locustfiles.__file__).parent
    files = str(folder) + (f",{folder / '_mix_sweep.py'}" if args.sweep else "")
    duration = args.duration if args.duration is not None else QUICK_RUN_S
    extra = [a for a in args.locust_args if a != "--"] if args.locust_args else []
    return [sys.executable, "-m", "locust", "-f", files, "--headless", "--host", engine.url,
            "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{duration}s",
            "--hook-url", engine.hook_url, "--results-dir", args.results, "--run-id", run_id,
            "--sample-interval-s", str(args.interval),
            "--only-summary", *DEMO_LOAD, *extra]


def run(args: argparse.Namespace) -> int:
    if args.users < 1 or args.spawn_rate <= 0 or args.interval <= 0:
        print("memsoak demo: --users, --spawn-rate and --interval must be positive", file=sys.stderr)
        return BAD_CONFIG
    run_id = new_run_id()
    engine_log = tempfile.NamedTemporaryFile(prefix="memsoak-demo-engine-", suffix=".log", delete=False)
    engine = demo_engine(args, engine_log)
    try:
        engine.start()
    except EngineError as exc:
        print(f"memsoak demo: {exc} ({engine_log.name})", file=sys.stderr)
        return BAD_CONFIG
    print(f"memsoak demo: engine {engine.url} (hook {engine.hook_url}, leaks: "
          f"{', '.join(args.leak) or 'none'}, log {engine_log.name})", flush=True)
    locust = subprocess.Popen(locust_command(args, engine, run_id))
    # SIGTERM is passed on to Locust, which writes the report from what was measured and exits;
    # then the engine is stopped as after a normal run.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: locust.send_signal(signal.SIGTERM))
    try:
        code = locust.wait()
    except KeyboardInterrupt:
        # Locust got the same Ctrl-C from the terminal and writes the report.
        code = locust.wait(timeout=120)
    finally:
        if locust.poll() is None:
            locust.kill()
        engine.stop()
        engine_log.close()
    run_dir = Path(args.results) / run_id
    report = run_dir / "report.html"
    print(f"memsoak demo: report {report if report.exists() else run_dir} (exit code {code})", flush=True)
    return code
