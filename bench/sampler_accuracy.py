"""How right the sampled allocation tracker is, and what a snapshot of it costs, on the demo engine.

Starts memsoak-demo-engine under memsoak-run (allocation mode sampled at its default rate unless
told otherwise) with planted Python leaks, drives USERS chat users at the demo's pace (think time
0.1-0.5 s, a new session every 25 messages), takes the baseline snapshot after the warm-up, then a
snapshot at every checkpoint (default 5 and 30 minutes after the baseline) and one every
--tick seconds in between. Printed, per checkpoint: the rank of each planted site in the diff's
by_size (1 = named first), its estimated growth against the truth (bytes per op x ops between
the two snapshots, read from the engine's /api/health around each snapshot) and the error; the
tracker's own memory and the engine's RSS; and per snapshot: how long it took, the RSS step
(engine RSS right before and right after), the latency of the requests in flight during it
against the p99 of the requests in the 10 s before and after.

    python bench/sampler_accuracy.py                         # 20 users, checkpoints 5m and 30m
    python bench/sampler_accuracy.py --checkpoints 300       # 5 minutes only
    python bench/sampler_accuracy.py --mode tracemalloc      # the same with tracemalloc, for contrast
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import psutil

API_KEY = "demo-key"
ENGINE_BOUNDS = ["--max-live-sessions", "50", "--cache-entries", "64", "--session-idle-s", "30"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, method: str = "GET", timeout: float = 60) -> dict:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None,
                                     headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


class Load:
    """USERS threads on keep-alive connections; every request's (start, end) is kept."""

    def __init__(self, port: int, users: int, think: tuple[float, float], deadline: float) -> None:
        self.port, self.users, self.think, self.deadline = port, users, think, deadline
        self.requests: list[tuple[float, float]] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._user, args=(i,), daemon=True) for i in range(users)]

    def start(self) -> None:
        for index, thread in enumerate(self.threads):
            thread.start()
            time.sleep(0.2)  # spawn 5 users/s, as the demo does

    def stop(self) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(30)

    def _call(self, conn: http.client.HTTPConnection, path: str, body: dict) -> dict | None:
        started = time.monotonic()
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                      "X-API-Key": API_KEY})
        response = conn.getresponse()
        data = response.read()
        with self._lock:
            self.requests.append((started, time.monotonic()))
        return json.loads(data) if response.status < 400 else None

    def _user(self, index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        session, sent = None, 0
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            try:
                if session is None or sent % 25 == 0:
                    created = self._call(conn, "/api/engine/chat/sessions", {"title": f"user {index}"})
                    session = created["id"] if created else None
                    if session is None:
                        with self._lock:
                            self.errors += 1
                        self._stop.wait(1.0)
                        continue
                if self._call(conn, f"/api/engine/chat/sessions/{session}/messages",
                              {"content": f"user {index} message {sent}: what about memory?"}) is None:
                    with self._lock:
                        self.errors += 1
                sent += 1
            except (OSError, http.client.HTTPException, ValueError):
                with self._lock:
                    self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._stop.wait(rng.uniform(*self.think))

    def latencies_between(self, t0: float, t1: float, overlapping: bool) -> list[float]:
        """Latencies of requests in flight during [t0, t1] (overlapping) or ending within it."""
        with self._lock:
            spans = list(self.requests)
        if overlapping:
            return [end - start for start, end in spans if start <= t1 and end >= t0]
        return [end - start for start, end in spans if t0 <= end <= t1]


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(0.99 * len(values)))]


class Engine:
    def __init__(self, mode: str, sample_bytes: int | None, leaks: str) -> None:
        self.port, self.hook_port = free_port(), free_port()
        env = {**os.environ, "MEMSOAK_ALLOC_MODE": mode}
        if sample_bytes:
            env["MEMSOAK_SAMPLE_BYTES"] = str(sample_bytes)
        options = ["--tracemalloc-frames", "1"] if mode == "tracemalloc" else []
        command = [sys.executable, "-m", "memsoak.profiler.run", "--port", str(self.hook_port), *options, "--",
                   sys.executable, "-m", "memsoak.demo_engine", "--host", "127.0.0.1", "--port", str(self.port),
                   "--leaks", leaks, *ENGINE_BOUNDS]
        self.proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.hook = f"http://127.0.0.1:{self.hook_port}"

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: the engine exited with {self.proc.returncode}")
            try:
                get_json(self.url + "/api/health", timeout=2)
                get_json(self.hook + "/health", timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"bench: the engine is not ready after {timeout} s")

    def engine_pid(self) -> int:
        return int(get_json(self.url + "/api/health").get("pid") or get_json(self.hook + "/health")["pid"])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(timeout=10)


def snapshot(engine: Engine, proc: psutil.Process, load: Load, label: str) -> dict:
    ops_before = {name: leak["ops"] for name, leak in get_json(engine.url + "/api/health")["leaks"].items()}
    rss_before = proc.memory_info().rss
    t0 = time.monotonic()
    answer = get_json(f"{engine.hook}/snapshots/{label}", "POST")
    t1 = time.monotonic()
    rss_after = proc.memory_info().rss
    ops_after = {name: leak["ops"] for name, leak in get_json(engine.url + "/api/health")["leaks"].items()}
    return {"label": label, "t0": t0, "t1": t1, "rss_step": rss_after - rss_before, "answer": answer,
            "ops": {name: (ops_before[name] + ops_after[name]) / 2 for name in ops_before}}


def snapshot_latency(load: Load, snap: dict) -> dict:
    during = load.latencies_between(snap["t0"], snap["t1"], overlapping=True)
    before = load.latencies_between(snap["t0"] - 10, snap["t0"], overlapping=False)
    after = load.latencies_between(snap["t1"], snap["t1"] + 10, overlapping=False)
    return {"during_max_ms": 1000 * max(during) if during else float("nan"), "during_n": len(during),
            "during_p99_ms": 1000 * p99(during), "neighbours_p99_ms": 1000 * p99(before + after)}


def pooled_latency(load: Load, snaps: list[dict], margin: float = 0.5, shift: float = 10.0) -> str:
    """p99 of the requests in flight within `margin` s of any snapshot, pooled over all snapshots,
    against the same windows `shift` s later (no snapshot there): one snapshot overlaps too few
    requests for a p99 of its own."""
    around, control = [], []
    starts = [snap["t0"] for snap in snaps]
    for snap in snaps:
        t0, t1 = snap["t0"] - margin, snap["t1"] + margin
        around += load.latencies_between(t0, t1, overlapping=True)
        if not any(t0 + shift - margin <= other <= t1 + shift + margin for other in starts):
            control += load.latencies_between(t0 + shift, t1 + shift, overlapping=True)
    took = sorted(1000 * (snap["t1"] - snap["t0"]) for snap in snaps)
    return (f"around snapshots (in flight within {margin:g} s of one, {len(snaps)} snapshots pooled): "
            f"n={len(around)}, p99 {1000 * p99(around):.1f} ms, p50 {1000 * p99_at(around, 0.5):.1f} ms; "
            f"the same windows {shift:g} s later: n={len(control)}, p99 {1000 * p99(control):.1f} ms, "
            f"p50 {1000 * p99_at(control, 0.5):.1f} ms; snapshot took median {statistics.median(took):.1f} ms, "
            f"max {took[-1]:.1f} ms; RSS step max {max(snap['rss_step'] for snap in snaps) / 1024:.0f} KB")


def p99_at(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline")
    parser.add_argument("--checkpoints", default="300,1800", help="seconds after the baseline, comma list")
    parser.add_argument("--tick", type=float, default=60.0, help="an extra snapshot every N s (0 = none)")
    parser.add_argument("--mode", choices=("sampled", "tracemalloc"), default="sampled")
    parser.add_argument("--sample-bytes", type=int, default=None, help="default: the hook's")
    parser.add_argument("--leaks", default="response_cache,score_history")
    parser.add_argument("--think", default="0.1,0.5", help="think time range, seconds")
    args = parser.parse_args()
    try:
        checkpoints = sorted(float(x) for x in args.checkpoints.split(","))
        think = tuple(float(x) for x in args.think.split(","))
    except ValueError:
        raise SystemExit("bench: --checkpoints and --think are comma lists of seconds, e.g. 300,1800")
    if args.users < 1 or not checkpoints or checkpoints[0] <= 0 or checkpoints[-1] > 4 * 3600 or len(think) != 2:
        raise SystemExit("bench: --users >= 1, checkpoints within 0..14400 s, --think MIN,MAX")

    engine = Engine(args.mode, args.sample_bytes, args.leaks)
    load = None
    rows, snaps = [], []
    try:
        engine.wait_ready()
        proc = psutil.Process(engine.engine_pid())
        total = args.warmup + checkpoints[-1] + 30
        load = Load(engine.port, args.users, think, time.monotonic() + total)
        load.start()
        time.sleep(args.warmup)
        base = snapshot(engine, proc, load, "base")
        snaps.append(base)
        base_t = base["t1"]
        next_tick = base_t + args.tick if args.tick else float("inf")
        tick = 0
        for checkpoint in checkpoints:
            while True:
                now = time.monotonic()
                due = base_t + checkpoint
                if next_tick < due and now >= next_tick:
                    tick += 1
                    snaps.append(snapshot(engine, proc, load, f"tick{tick}"))
                    next_tick += args.tick
                    continue
                if now >= due:
                    break
                time.sleep(min(1.0, max(0.05, min(due, next_tick) - now)))
            head = snapshot(engine, proc, load, f"at{int(checkpoint)}")
            snaps.append(head)
            diff = get_json(f"{engine.hook}/diff?base=base&head={head['label']}&top=50")
            health = get_json(engine.hook + "/health")
            leaks = get_json(engine.url + "/api/health")["leaks"]
            ranked = [f"{site['file']}:{site['line']}" for site in diff["by_size"]]
            for name, leak in leaks.items():
                ops = head["ops"][name] - base["ops"][name]
                truth = leak["bytes_per_op"] * ops
                found = [site for site in diff["by_size"] if f"{site['file']}:{site['line']}".endswith(leak["site"])]
                estimate = found[0]["size_diff"] if found else 0
                rank = 1 + next((i for i, s in enumerate(ranked) if s.endswith(leak["site"])), 99)
                rows.append({"checkpoint_s": checkpoint, "leak": name, "rank": rank, "ops": ops,
                             "truth_mb": truth / 2**20, "estimate_mb": estimate / 2**20,
                             "error": (estimate - truth) / truth if truth else float("nan"),
                             "others_top": [site for site in ranked[:3] if not site.endswith(leak["site"])][:1]})
            tracker = health.get("alloc_sampler") or {}
            rows[-1]["tracker"] = {k: tracker.get(k) for k in ("own_bytes", "samples", "live_samples",
                                                                  "tracebacks", "overflowed", "failed")}
            rows[-1]["rss_mb"] = proc.memory_info().rss / 2**20
            print(json.dumps(rows[-len(leaks):]), file=sys.stderr, flush=True)
    finally:
        if load is not None:
            load.stop()
        engine.stop()

    print(f"mode {args.mode}, sample_bytes {args.sample_bytes or 'default (512 KiB)'}, {args.users} users, "
          f"think {think[0]}-{think[1]} s, warm-up {args.warmup:g} s, leaks {args.leaks}; "
          f"requests {len(load.requests) if load else 0}, errors {load.errors if load else 0}\n")
    print("| after baseline | leak | rank in by_size | ops | truth MB | estimate MB | error |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['checkpoint_s']:g} s | {row['leak']} | {row['rank']} | {row['ops']:.0f} | "
              f"{row['truth_mb']:.1f} | {row['estimate_mb']:.1f} | {100 * row['error']:+.1f}% |")
    for row in rows:
        if "tracker" in row:
            print(f"\nat {row['checkpoint_s']:g} s: tracker {row['tracker']}, engine RSS {row['rss_mb']:.1f} MB")
    if snaps and load is not None:
        print("\n" + pooled_latency(load, snaps))
    print("\n| snapshot | took ms | RSS step KB | in flight: n | max ms | p99 ms | neighbours p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for snap in snaps:
        lat = snapshot_latency(load, snap)
        print(f"| {snap['label']} | {1000 * (snap['t1'] - snap['t0']):.1f} | {snap['rss_step'] / 1024:.0f} | "
              f"{lat['during_n']} | {lat['during_max_ms']:.1f} | {lat['during_p99_ms']:.1f} | "
              f"{lat['neighbours_p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
