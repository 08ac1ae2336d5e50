"""Real runs against the demo engine: does the verdict find each planted leak, on the right signal?

Each case starts the demo engine under `memsoak-run` (with one planted leak at one size, or none),
drives it headless with `locust -f memsoak/locustfiles` and the memsoak plugin (the very engine and Locust
commands of `memsoak demo`, with its defaults: one source of truth for the load), then re-analyses the run directory offline with
`reports.analyze`. Per case and repetition it records memsoak's verdict, the signals that leaked,
whether the right signal leaked (Python leaks on the heap, `native` on RSS and not on the heap,
`fd` on open fds, `asyncio_task` on tasks), whether the top tracemalloc site is the planted line
(`memsoak.demo_engine.leaks.SITE_LINES`, the same lines /api/health reports), and the original spec's
verdict on the same run (`report.legacy`: first/last 10% of RSS vs 50 MB, OLS vs 10 MB/h).
Runs go one after another (two cores: parallel runs would disturb each other). Prints Markdown.

    python bench/verdict_real.py                                    # every case, 5 min, 1 repetition
    python bench/verdict_real.py --kinds clean,score_history:64 --repeat 3
    python bench/verdict_real.py --duration 90 --kinds fd+asyncio_task:0,native:65536 --json out.json
    python bench/verdict_real.py --reanalyse /tmp/realruns-20261126/runs   # stored runs, today's memsoak/reports/
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memsoak import reports
from memsoak.demo_engine.leaks import SITE_LINES
from memsoak.commands import demo
from memsoak.reports.stats.attribution import net_growth
from memsoak.engine import EngineError

# Bytes per op of each case ("per" is session or message, see memsoak/demo_engine/leaks.py).
DEFAULT_CASES = ("clean", "session_state:1024", "session_state:4096", "response_cache:256",
                 "response_cache:1024", "score_history:64", "score_history:256", "score_history:1024",
                 "native:16384", "native:65536", "fd+asyncio_task:256")
PYTHON_LEAKS = ("session_state", "response_cache", "score_history", "lru_cache", "logger", "small_append",
                "filling_cache", "async_gen")
# A bounded cache still filling when the run ends: `inconclusive` or leak are right, never pass.
STILL_FILLING = ("filling_cache",)


@dataclass
class Outcome:
    case: str
    rep: int
    run_dir: str
    duration_s: float = 0.0
    messages: int = 0
    sessions: int = 0
    verdict: str = "error"
    exit_code: int | None = None
    driver: str | None = None
    evidence: str | None = None             # what drove the call (the driver signal's evidence)
    leaking: list[str] = field(default_factory=list)
    right_signal: bool | None = None
    heap_growth_kb: float | None = None     # the heap series' growth over the analysed window
    heap_net_diff_kb: float | None = None   # tracemalloc baseline -> final, the live heap's growth
    heap_reason: str | None = None
    heap_per_message_b: float | None = None
    top_site: str | None = None
    planted_site: str | None = None
    planted_rank: int | None = None
    legacy_leak: bool | None = None
    legacy_growth_mb: float | None = None
    legacy_slope_mb_h: float | None = None
    error: str | None = None


def kind_of(case: str) -> str:
    return case.partition(":")[0]


def right_signal(kind: str, leaking: set[str]) -> bool:
    """Whether the signals that leaked are the ones the planted kind should move."""
    if kind == "clean":
        return not leaking
    if kind in STILL_FILLING:
        return True     # judged on the outcome (inconclusive or leak), see evaluate()
    if kind in PYTHON_LEAKS:
        return "heap" in leaking
    if kind == "native":
        return bool(leaking & {"rss", "tree_rss"}) and "heap" not in leaking
    if kind == "fd":
        return "open_fds" in leaking
    if kind == "asyncio_task":
        return "asyncio_tasks" in leaking
    raise ValueError(f"unknown case {kind!r}")


def planted_rank(sites: list[Any], planted: str) -> int | None:
    """1-based rank of the planted line among the report's sites (by file suffix and line): the
    site itself, or for an allocation inside the stdlib or a library, the engine's calling line."""
    for rank, site in enumerate(sites, start=1):
        names = (str(site.key), str(getattr(site, "engine_frame", None) or ""))
        if any(name.replace("\\", "/").endswith(planted) for name in names):
            return rank
    return None


def net_heap_growth(run_dir: Path) -> Any:
    """tracemalloc's net growth between the run's widest pair of snapshots (memsoak.reports.stats.attribution)."""
    run = reports.load_run(run_dir)
    label_t = {str(e.get("label")): float(e["t"]) for e in run.events
               if e.get("type") == "snapshot" and e.get("t") is not None}
    return net_growth(run.diffs, label_t)


def evaluate(run_dir: Path, case: str, rep: int) -> Outcome:
    report = reports.analyze(reports.load_run(run_dir))
    kind = kind_of(case)
    leaking = {s.name for s in report.signals if s.verdict == "leak"}
    right = all(right_signal(kind_of(part), leaking) for part in case.split("+"))
    out = Outcome(case, rep, str(run_dir), duration_s=report.duration_s, verdict=report.outcome,
                  exit_code=report.exit_code, driver=report.driver, leaking=sorted(leaking), right_signal=right)
    driver = report.signal(report.driver) if report.driver else None
    out.evidence = getattr(driver, "evidence", None) if driver is not None else None
    if kind in STILL_FILLING:
        out.right_signal = report.outcome in ("leak", "inconclusive")
    last = report.rows[-1] if report.rows else {}
    ops = last.get("ops") or {}
    out.messages, out.sessions = int(ops.get("messages") or 0), int(ops.get("sessions_created") or 0)
    heap = report.signal("heap")
    if heap is not None and heap.unit == "bytes" and heap.trend is not None:
        out.heap_growth_kb = heap.trend.growth / 1024   # over the analysed window, steps removed
        per_msg = next((r for r in heap.per_op if r.op == "messages"), None)
        out.heap_per_message_b = per_msg.per_op if per_msg else None
        out.heap_reason = heap.reason
    net = net_heap_growth(run_dir)
    out.heap_net_diff_kb = None if net is None else net.total_bytes / 1024
    out.top_site = report.sites[0].key if report.sites else None
    if kind in SITE_LINES:
        out.planted_site = f"demo_engine/leaks.py:{SITE_LINES[kind]}"  # suffix: stored runs of either layout
        out.planted_rank = planted_rank(report.sites, out.planted_site)
    if report.legacy is not None:
        out.legacy_leak = report.legacy.leak
        out.legacy_growth_mb = report.legacy.growth_mb
        out.legacy_slope_mb_h = report.legacy.ols_mb_per_hour
    return out


def run_case(case: str, rep: int, args: argparse.Namespace, results: Path) -> Outcome:
    """One real run: engine under memsoak-run, headless Locust with the plugin, offline analysis."""
    # run ids name directories: letters, digits, '_', '.', '-' only (memsoak refuses others)
    run_id = f"{re.sub(r'[^A-Za-z0-9_.-]', '-', case)}-r{rep}-{time.strftime('%H%M%S')}"
    # The namespace `memsoak demo` parses: same engine, same Locust command, same defaults.
    options = argparse.Namespace(
        leak=[] if case == "clean" else case.split("+"), duration=args.duration, users=args.users,
        spawn_rate=args.spawn_rate, results=str(results), interval=args.interval,
        tracemalloc_frames=args.frames, engine_arg=list(args.engine_args), sweep=False,
        locust_args=[*args.locust_args, "--loglevel", "WARNING"])
    log = tempfile.NamedTemporaryFile(prefix="verdict-real-engine-", suffix=".log", delete=False)
    engine = demo.demo_engine(options, log)
    try:
        engine.start(timeout_s=getattr(args, "start_timeout", 240.0))
        command = demo.locust_command(options, engine, run_id)
        locust_log = Path(log.name).with_suffix(".locust.log")
        with open(locust_log, "wb") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=args.duration + 600, check=False)
    except (EngineError, subprocess.TimeoutExpired) as exc:
        return Outcome(case, rep, str(results / run_id), error=str(exc).splitlines()[0])
    finally:
        engine.stop()
        log.close()
    run_dir = results / run_id
    if not (run_dir / "series.jsonl").exists():
        tail = locust_log.read_text(errors="replace").strip().splitlines()[-3:]
        return Outcome(case, rep, str(run_dir), error=f"no series.jsonl (Locust exit {done.returncode}: "
                       f"{' / '.join(tail)}; engine log {log.name}, Locust log {locust_log})")
    return evaluate(run_dir, case, rep)


def stored_case(run_dir: Path) -> tuple[str, int]:
    """The case and repetition of a stored run: the engine's --leaks (run.json) and the run id."""
    run = json.loads((run_dir / "run.json").read_text())
    cmdline = (run.get("health") or {}).get("cmdline") or []
    leaks = cmdline[cmdline.index("--leaks") + 1].replace(",", "+") if "--leaks" in cmdline else "clean"
    rep = re.search(r"-r(\d+)-\d{6}$", run_dir.name)
    return leaks, int(rep.group(1)) if rep else 1


def reanalyse(results: Path) -> list[Outcome]:
    """Every run directory under `results`, in the order they ran, with today's memsoak/reports/."""
    runs = sorted((d for d in results.iterdir() if (d / "series.jsonl").exists() and (d / "run.json").exists()),
                  key=lambda d: (d / "run.json").stat().st_mtime)
    return [evaluate(d, *stored_case(d)) for d in runs]


def _pct(hits: int, n: int) -> str:
    return f"{hits}/{n}" if n else "-"


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0f}"


def markdown(outcomes: list[Outcome]) -> str:
    lines = ["| case | runs | memsoak: leak called | right signal | planted line first | "
             "original: leak called | heap per message (B) | msgs/run |",
             "|---|---|---|---|---|---|---|---|"]
    cases = list(dict.fromkeys(o.case for o in outcomes))
    for case in cases:
        rows = [o for o in outcomes if o.case == case and o.error is None]
        kind = kind_of(case)
        called = sum(o.verdict in ("leak", "inconclusive") for o in rows)
        right = sum(bool(o.right_signal) for o in rows)
        first = (_pct(sum(o.planted_rank == 1 for o in rows), len(rows))
                 if kind in PYTHON_LEAKS else "n/a")
        legacy = sum(bool(o.legacy_leak) for o in rows)
        per_msg = [o.heap_per_message_b for o in rows if o.heap_per_message_b is not None]
        msgs = [o.messages for o in rows]
        label = "false alarms (leak or inconclusive)" if kind == "clean" else "leak or inconclusive"
        lines.append(f"| {case} | {len(rows)} | {_pct(called, len(rows))} ({label}) | {_pct(right, len(rows))} | "
                     f"{first} | {_pct(legacy, len(rows))} | "
                     f"{', '.join(f'{v:.0f}' for v in per_msg) or '-'} | "
                     f"{', '.join(str(m) for m in msgs) or '-'} |")
    detail = ["", "| case | rep | outcome (exit) | driver (evidence) | leaking signals | heap growth KB | "
                  "tracemalloc net KB | top site (planted rank) | original: RSS growth MB, OLS MB/h | messages |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.error:
            detail.append(f"| {o.case} | {o.rep} | error: {o.error} | | | | | | | |")
            continue
        top = re.sub(r"^.*/site-packages/", "", (o.top_site or "-").replace(str(Path.cwd()) + "/", ""))
        detail.append(f"| {o.case} | {o.rep} | {o.verdict} ({o.exit_code}) | {o.driver or '-'} "
                      f"({o.evidence or '-'}) | {', '.join(o.leaking) or '-'} | "
                      f"{_kb(o.heap_growth_kb)} | {_kb(o.heap_net_diff_kb)} | "
                      f"{top} ({o.planted_rank if o.planted_rank else '-'}) | "
                      f"{o.legacy_growth_mb:+.1f}, {o.legacy_slope_mb_h:+.1f} | {o.messages} |")
    return "\n".join(lines + detail)


FRAMES_WORKLOAD = """
import json, logging, sys, time, tracemalloc
frames = int(sys.argv[1])
if frames:
    tracemalloc.start(frames)
keep = []
def handler(i, depth):
    if depth:
        return handler(i, depth - 1)
    body = json.loads(json.dumps({"id": i, "text": "hello " * 20, "tags": list(range(10))}))
    keep.append({**body, "n": str(i)})
    if len(keep) > 20000:
        del keep[:10000]
    return body
def engine_line(i):
    logging.getLogger("bench").debug("message %d", i)
    return handler(i, 12)
for i in range(20000):
    engine_line(i)  # warm up
start = time.perf_counter()
for i in range(60000):
    engine_line(i)
per_op = (time.perf_counter() - start) / 60000
snap_s = traced = 0.0
if frames:
    traced = tracemalloc.get_tracemalloc_memory()
    t0 = time.perf_counter()
    tracemalloc.take_snapshot()
    snap_s = time.perf_counter() - t0
print(per_op, snap_s, traced)
"""


def frames_cost(depths: list[int], rounds: int) -> str:
    """The cost of tracemalloc frames, side by side in one run: time per request-like operation
    (JSON round trip, a dict kept, 14 Python frames deep), snapshot time and tracemalloc's own
    memory, per depth, alternating depths each round; ratios against untraced."""
    found: dict[int, list[tuple[float, float, float]]] = {d: [] for d in depths}
    for _ in range(rounds):
        for depth in depths:
            out = subprocess.run([sys.executable, "-c", FRAMES_WORKLOAD, str(depth)], capture_output=True,
                                 text=True, timeout=600, check=True).stdout.split()
            found[depth].append(tuple(float(v) for v in out))   # type: ignore[arg-type]
    base = min(r[0] for r in found[0]) if 0 in found else None
    lines = ["| frames | time per op (us), best of rounds | x untraced | snapshot (ms) | tracemalloc memory (MB) |",
             "|---|---|---|---|---|"]
    for depth, rows in found.items():
        best = min(r[0] for r in rows)
        lines.append(f"| {depth or 'off'} | {best * 1e6:.1f} | {best / base if base else float('nan'):.2f} | "
                     f"{min(r[1] for r in rows) * 1e3:.0f} | {min(r[2] for r in rows) / 2**20:.1f} |")
    return "\n".join(lines)


def parse_case(text: str) -> str:
    """clean, NAME[:BYTES] or several leaks in one run joined by '+' (fd+asyncio_task)."""
    for part in text.split("+"):
        name, _, size = part.partition(":")
        if name == "clean" and part != text:
            raise argparse.ArgumentTypeError(f"{text!r}: clean cannot be combined with a leak")
        if name != "clean" and name not in SITE_LINES:
            raise argparse.ArgumentTypeError(f"unknown case {name!r}: clean or one of {', '.join(SITE_LINES)}")
        if size and not size.isdigit():
            raise argparse.ArgumentTypeError(f"size {size!r} in {text!r} must be whole bytes per operation")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(DEFAULT_CASES),
                        help="comma list of cases: clean or NAME[:BYTES_PER_OP] (default: all)")
    parser.add_argument("--duration", type=int, default=300, help="seconds per run (default 300)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of each case (default 1)")
    parser.add_argument("--users", type=int, default=demo.USERS)
    parser.add_argument("--spawn-rate", type=float, default=demo.SPAWN_RATE)
    parser.add_argument("--interval", type=float, default=demo.INTERVAL_S, help="sampling interval, s")
    parser.add_argument("--frames", type=int, default=demo.TRACEMALLOC_FRAMES,
                        help="tracemalloc frames from the start")
    parser.add_argument("--engine-arg", dest="engine_args", action="append", default=[],
                        help=f"demo engine flag after the demo's {' '.join(demo.ENGINE_BOUNDS)} (repeatable)")
    parser.add_argument("--locust-arg", dest="locust_args", action="append", default=[],
                        help=f"Locust flag after the demo's {' '.join(demo.DEMO_LOAD)} (repeatable)")
    parser.add_argument("--start-timeout", type=float, default=240.0,
                        help="seconds the engine may take to answer (tracemalloc from the start on a busy box)")
    parser.add_argument("--results", default="", help="where run directories go (default: a temp dir)")
    parser.add_argument("--json", default="", help="also write every outcome to this JSON file")
    parser.add_argument("--reanalyse", default="", metavar="RESULTS",
                        help="no runs: re-analyse the run directories under RESULTS and print the tables")
    parser.add_argument("--frames-cost", default="", metavar="DEPTHS",
                        help="no runs: measure tracemalloc's cost at these frame depths (e.g. 0,1,8,25)")
    args = parser.parse_args(argv)
    if args.frames_cost:
        print(frames_cost([int(d) for d in args.frames_cost.split(",")], args.repeat))
        return 0
    if args.reanalyse:
        if not Path(args.reanalyse).is_dir():
            parser.error(f"--reanalyse {args.reanalyse}: no such directory; give the --results of a bench run")
        outcomes = reanalyse(Path(args.reanalyse))
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
        print(markdown(outcomes))
        return 0
    try:
        cases = [parse_case(c.strip()) for c in args.kinds.split(",") if c.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if args.duration < 30 or args.repeat < 1 or args.users < 1:
        parser.error("--duration must be >= 30 s, --repeat and --users >= 1")
    results = Path(args.results or tempfile.mkdtemp(prefix="verdict-real-"))
    outcomes: list[Outcome] = []
    for rep in range(1, args.repeat + 1):
        for case in cases:
            outcome = run_case(case, rep, args, results)
            outcomes.append(outcome)
            print(f"{case} r{rep}: {outcome.verdict} {outcome.leaking} top={outcome.top_site} "
                  f"rank={outcome.planted_rank} legacy={outcome.legacy_leak} msgs={outcome.messages} "
                  f"{outcome.error or ''}", file=sys.stderr, flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    print(f"{args.duration} s runs, {args.users} users, engine {' '.join(demo.ENGINE_BOUNDS + args.engine_args)}, "
          f"locust {' '.join(demo.DEMO_LOAD + args.locust_args)}; run dirs under {results}\n")
    print(markdown(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
