"""What the hook costs the engine: the same load with and without it, alternating in one run.

Starts one engine per mode side by side (default: no hook; the hook in its default mode, i.e. the
sampled allocation tracker at its default rate; the hook with tracemalloc at 1 frame, for contrast;
`--modes` adds allocation tracking off, memsoak-run with the hook disabled, 60 s sampling intervals
and tracemalloc at 25 frames), each a real process on a loopback port, then runs ROUNDS rounds in
which every mode gets the same load in turn (A/B/A/B; the order rotates each round, so drift on a
shared machine spreads over all modes), or all at once with --concurrent. The load: 8 keep-alive
connections from 2 load-generator processes (a lean raw-socket client), each creating a chat
session and posting varied messages to it, bounded by --seconds per turn; in hooked modes it also
polls the hook's /samples every second, as the harness does.

Saturation is shown: each turn prints the engine's CPU as % of one core and its run-queue wait
(schedstat: runnable, waiting for a CPU); CPU + wait near 100% means the engine always had work.
Printed at the end: a Markdown table of throughput, p95 and CPU per request per mode, their ratios
to the unhooked baseline (median over rounds of same-round ratios, with a 90% bootstrap interval),
engine and client CPU, the sampler's own CPU share, and the load average before and after. On a
shared machine throughput swings far more than a few % between turns: read the intervals, and
bench/sampler_hotpath.py (cachegrind) for the tracker's cost free of timing noise.

    python bench/hook_overhead.py                       # the demo engine (memsoak-demo-engine)
    python bench/hook_overhead.py --engine small-allocs # many small allocations per request
    python bench/hook_overhead.py --stand-in            # a tiny threaded stdlib app
"""
from __future__ import annotations

import argparse
import concurrent.futures as concurrent_futures
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

# mode -> (memsoak-run options, environment); None = the engine alone
MODES: dict[str, tuple[list[str], dict[str, str]] | None] = {
    "no hook": None,
    "hook: sampled (default)": ([], {"MEMSOAK_ALLOC_MODE": "sampled"}),
    "hook: allocation tracking off": ([], {"MEMSOAK_ALLOC_MODE": "off"}),
    # the hook's periodic sampling (probes every second) taken out: one sample a minute
    "hook: tracking off (60 s interval)": ([], {"MEMSOAK_ALLOC_MODE": "off", "MEMSOAK_INTERVAL": "60"}),
    "hook: sampled (60 s interval)": ([], {"MEMSOAK_ALLOC_MODE": "sampled", "MEMSOAK_INTERVAL": "60"}),
    # memsoak-run's process tree and environment, the hook itself not started (MEMSOAK_DISABLE)
    "memsoak-run: hook disabled": ([], {"MEMSOAK_DISABLE": "1"}),
    "hook + tracemalloc 1 frame": (["--tracemalloc-frames", "1"], {"MEMSOAK_ALLOC_MODE": "tracemalloc"}),
    "hook + tracemalloc 25 frames": (["--tracemalloc-frames", "25"], {"MEMSOAK_ALLOC_MODE": "tracemalloc"}),
}
DEFAULT_MODES = ["no hook", "hook: sampled (default)", "hook + tracemalloc 1 frame"]
API_KEY = "demo-key"
STAND_IN = '''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
SESSIONS = {}
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # and one buffered write per response: no delayed-ACK stalls
    wbufsize = 1 << 16
    def log_message(self, *a): pass
    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self): self._reply(200, {"status": "ok"})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.endswith("/sessions"):
            sid = str(len(SESSIONS)); SESSIONS[sid] = []
            return self._reply(201, {"id": sid})
        sid = self.path.split("/")[-2]
        SESSIONS.setdefault(sid, []).append(body.get("content"))
        del SESSIONS[sid][:-20]
        self._reply(200, {"content": "".join(reversed(body.get("content", "")))})
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''
# Another engine shape: many small, short-lived allocations per request (ROWS rows, ~8 objects each:
# parsed JSON, a list of small dicts and tuples, ints, formatted strings, a sort, a JSON answer),
# the worst case for a per-allocation cost, and a small bounded state per session. ROWS (argv[2],
# default 4000, i.e. ~30,000 objects per request) makes one request cost several ms of CPU, so
# that the engine, not the load generator, is what saturates. One thread serves one request per
# connection (HTTP/1.0) from the listen backlog: with CONCURRENCY connects always queued, the engine
# is never idle and never waits for a GIL hand-off between handler threads (a threaded server here
# left ~10% of the core idle in those hand-offs on this VM).
SMALL_ALLOCS = '''
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
SESSIONS = {}
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
def work(text, n=ROWS):
    words = text.split()
    rows = [{"i": i, "word": words[i % len(words)], "pair": (i, i * 2), "tag": f"w{i % 17}"} for i in range(n)]
    counts = {}
    for row in rows:
        counts[row["tag"]] = counts.get(row["tag"], 0) + len(row["word"])
    ranked = sorted(rows, key=lambda row: (row["tag"], -row["i"]))[:20]
    return {"counts": counts, "top": [[r["i"], r["word"]] for r in ranked]}
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: the single thread serves the backlog in turn
    disable_nagle_algorithm = True  # and one buffered write per response: no delayed-ACK stalls
    wbufsize = 1 << 16
    def log_message(self, *a): pass
    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self): self._reply(200, {"status": "ok"})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.endswith("/sessions"):
            sid = str(len(SESSIONS)); SESSIONS[sid] = []
            return self._reply(201, {"id": sid})
        sid = self.path.split("/")[-2]
        answer = work(body.get("content", "x"))
        SESSIONS.setdefault(sid, []).append(answer["top"][0])
        del SESSIONS[sid][:-20]
        self._reply(200, {"content": json.dumps(answer)})
class Server(HTTPServer):
    request_queue_size = 128
Server(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''
ENGINES = {"demo": None, "stand-in": STAND_IN, "small-allocs": SMALL_ALLOCS}
ENGINE_TITLES = {"demo": "memsoak-demo-engine (SQLite, LLM latency 0)", "stand-in": "stand-in stdlib app",
                 "small-allocs": "small-allocations stdlib app (~8 objects x ROWS rows per request)"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- load generator (own processes)
class _Conn:
    """A lean HTTP/1.1 keep-alive client: one prebuilt request per send, Content-Length replies only.

    http.client parses every reply's headers with the email package (~100 us a request in Python);
    this costs a few tens of us, so the engine, not the client, is what saturates."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def request(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                          b"X-API-Key: %s\r\nContent-Length: %d\r\n\r\n%s"
                          % (path.encode(), self.host.encode(), self.port, API_KEY.encode(), len(body), body))
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buf = self.buf[:end].lower(), self.buf[end + 4:]
        status = int(head[9:12])
        marker = head.find(b"content-length:")
        if marker < 0:
            raise ValueError("reply without Content-Length")
        line_end = head.find(b"\r\n", marker)
        length = int(head[marker + 15:line_end if line_end >= 0 else len(head)])
        while len(self.buf) < length:
            self._recv()
        data, self.buf = self.buf[:length], self.buf[length:]
        if head.startswith(b"http/1.0") or b"connection: close" in head:
            self.close()
        return status, data

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("engine closed the connection")
        self.buf += chunk


def loadgen(url: str, seconds: float, concurrency: int, hook_url: str | None, tag: str = "") -> dict:
    host, port = url.split("//")[1].split(":")
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def user(index: int) -> None:
        conn = _Conn(host, int(port))
        sent = 0
        session = None
        own: list[float] = []
        while time.monotonic() < deadline and sent < 1_000_000:
            try:
                if session is None or sent % 25 == 0:
                    started = time.perf_counter()
                    status, data = conn.request("/api/engine/chat/sessions",
                                                b'{"title": "bench %s%d"}' % (tag.encode(), index))
                    own.append(time.perf_counter() - started)
                    session = json.loads(data)["id"] if status < 400 else None
                    if session is None:
                        errors[0] += 1
                        continue
                body = b'{"content": "message %s%d-%d: how much memory does this take?"}' % (
                    tag.encode(), index, sent)
                started = time.perf_counter()
                status, _ = conn.request(f"/api/engine/chat/sessions/{session}/messages", body)
                own.append(time.perf_counter() - started)
                if status >= 400:
                    errors[0] += 1
                sent += 1
            except (OSError, ValueError, KeyError):
                errors[0] += 1
                conn.close()
                time.sleep(0.01)
        conn.close()
        latencies.extend(own)  # list.extend is atomic under the GIL

    def poll_hook() -> None:
        since = 0
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{hook_url}/samples?since={since}", timeout=5) as answer:
                    since = json.loads(answer.read())["last_seq"]
            except OSError:
                pass
            time.sleep(1.0)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(concurrency)]
    if hook_url:
        threads.append(threading.Thread(target=poll_hook))
    cpu_before = time.process_time()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.monotonic() - started
    return {"latencies": latencies, "errors": errors[0], "elapsed": elapsed,
            "client_cpu_s": time.process_time() - cpu_before}


# ---------------------------------------------------------------- engines and rounds
# --pin: the engine alone on the last CPU, the load generators (and this script) on the others. On a
# shared VM one vCPU can run a few % slower than the other for minutes (measured here: two identical
# processes pinned one per vCPU differed by 2-3% in median, with per-block times barely correlated),
# so an engine that migrates between them carries that difference into its turn.
PIN: dict[str, set[int] | None] = {"engine": None, "load": None}


def _pinned(role: str):
    cpus = PIN[role]
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


class Engine:
    def __init__(self, name: str, hook: tuple[list[str], dict[str, str]] | None, stand_in: Path | None,
                 sample_bytes: int | None = None, rows: int = 4000) -> None:
        self.name, self.port = name, free_port()
        self.hook_url = None
        hook_options, env = (None, {}) if hook is None else hook
        env = {**os.environ, **env}
        if sample_bytes:
            env["MEMSOAK_SAMPLE_BYTES"] = str(sample_bytes)
        if stand_in:
            command = [sys.executable, str(stand_in), str(self.port), str(rows)]
        else:
            command = [sys.executable, "-m", "memsoak.demo_engine", "--host", "127.0.0.1", "--port",
                       str(self.port), "--llm-latency-ms", "0", "--rate-limit-rps", "0",
                       "--duplicate-window-s", "0"]
        self.wrapped = hook_options is not None  # under memsoak-run: the engine is its child
        if hook_options is not None:
            hook_port = free_port()
            if env.get("MEMSOAK_DISABLE") != "1":
                self.hook_url = f"http://127.0.0.1:{hook_port}"
            command = [sys.executable, "-m", "memsoak.profiler.run", "--port", str(hook_port), *hook_options,
                       "--", *command]
        self.proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, env=env,
                                     preexec_fn=_pinned("engine"))
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: engine {self.name!r} exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url + "/api/health", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"bench: engine {self.name!r} not ready after {timeout} s")

    def members(self) -> list[psutil.Process]:
        """The engine's processes only (memsoak-run, when present, is not the engine)."""
        try:
            top = psutil.Process(self.proc.pid)
            members = top.children(recursive=True)
            if not self.wrapped:
                members.append(top)
        except psutil.Error:
            return []
        return members

    def cpu_seconds(self) -> float:
        total = 0.0
        for member in self.members():
            try:
                times = member.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def runqueue_wait_seconds(self) -> float:
        """Time the engine's threads spent runnable but waiting for a CPU (Linux schedstat): what
        CPU% misses when other jobs hold the cores. CPU + this wait near 100% of a core = saturated."""
        total = 0
        for member in self.members():
            try:
                for task in os.listdir(f"/proc/{member.pid}/task"):
                    with open(f"/proc/{member.pid}/task/{task}/schedstat") as stat:
                        total += int(stat.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9

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


def run_load(engine: Engine, seconds: float, concurrency: int, processes: int) -> dict:
    """One turn: `processes` load-generator processes share `concurrency` connections."""
    commands = []
    for k in range(processes):
        share = concurrency // processes + (1 if k < concurrency % processes else 0)
        command = [sys.executable, __file__, "--loadgen", engine.url, "--seconds", str(seconds),
                   "--concurrency", str(share), "--tag", f"p{k}-"]
        if engine.hook_url and k == 0:
            command += ["--hook-url", engine.hook_url]
        commands.append(command)
    seq_before = _hook_json(engine.hook_url, "/health")["last_seq"] if engine.hook_url else 0
    cpu_before, wait_before = engine.cpu_seconds(), engine.runqueue_wait_seconds()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_pinned("load"))
             for c in commands]
    parts = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise SystemExit(f"bench: load generator failed: {err.strip().splitlines()[-1:]}")
        parts.append(json.loads(out))
    cpu_used = engine.cpu_seconds() - cpu_before
    waited = engine.runqueue_wait_seconds() - wait_before
    latencies = sorted(x for part in parts for x in part["latencies"])
    elapsed = max(part["elapsed"] for part in parts)
    result = {"requests": len(latencies), "errors": sum(part["errors"] for part in parts),
              "rps": len(latencies) / elapsed,
              "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
              # the engine's CPU over the turn, in cores (1.0 = one core busy all along): a GIL-bound
              # engine at ~1.0 is saturated, so throughput measures the engine, not the client
              "engine_cores": cpu_used / elapsed,
              "engine_waiting": waited / elapsed,
              "client_cores": sum(part["client_cpu_s"] for part in parts) / elapsed}
    result["cpu_ms_per_request"] = cpu_used * 1000 / max(result["requests"], 1)
    result["sampler_share"] = 0.0
    if engine.hook_url:  # the sampler's own CPU (thread time, from its samples) / the engine's CPU
        samples = _hook_json(engine.hook_url, f"/samples?since={seq_before}")["samples"]
        result["sampler_share"] = sum(s["sample_cost_us"] for s in samples) / 1e6 / max(cpu_used, 1e-9)
    return result


def _hook_json(hook_url: str, route: str) -> dict:
    with urllib.request.urlopen(hook_url + route, timeout=30) as answer:
        return json.loads(answer.read())


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench(rounds: int, seconds: float, concurrency: int, engine_kind: str, modes: list[str],
          sample_bytes: int | None = None, processes: int = 2, rows: int = 4000,
          concurrent: bool = False, restart_every: int = 4) -> str:
    stand_in_path = None
    if ENGINES[engine_kind] is not None:
        stand_in_path = Path(tempfile.mkdtemp(prefix="memsoak-bench-")) / f"{engine_kind}.py"
        stand_in_path.write_text(ENGINES[engine_kind])
    load_before = _load_average()
    results: dict[str, list[dict]] = {name: [] for name in modes}
    engines: list[Engine] = []

    def start_engines() -> None:
        engines[:] = [Engine(name, MODES[name], stand_in_path, sample_bytes, rows) for name in modes]
        for engine in engines:
            engine.wait_ready()
        for engine in engines:  # warm-up: imports, caches, first sessions
            run_load(engine, min(seconds, 3.0), concurrency, processes)

    try:
        start_engines()
        for index in range(rounds):
            # fresh processes every few rounds: one process's memory layout can make it a few %
            # faster or slower for its whole life, a bias that more rounds alone never average out
            if restart_every and index and index % restart_every == 0:
                for engine in engines:
                    engine.stop()
                start_engines()
            order = engines[index % len(engines):] + engines[:index % len(engines)]
            if concurrent:  # every mode loaded at once: the machine's noise hits all of them alike
                with concurrent_futures.ThreadPoolExecutor(len(engines)) as pool:
                    turns = list(pool.map(lambda e: run_load(e, seconds, concurrency, processes), order))
                for engine, turn in zip(order, turns):
                    results[engine.name].append(turn)
            for engine in order:
                if not concurrent:
                    results[engine.name].append(run_load(engine, seconds, concurrency, processes))
                last = results[engine.name][-1]
                print(f"round {index + 1}/{rounds} {engine.name:28s} {last['rps']:8.1f} req/s  "
                      f"p95 {last['p95_ms']:7.2f} ms  cpu {last['cpu_ms_per_request']:.3f} ms/req  "
                      f"engine {100 * last['engine_cores']:5.1f}% of a core "
                      f"(+{100 * last['engine_waiting']:4.1f}% waiting for one)  "
                      f"client {100 * last['client_cores']:5.1f}%", file=sys.stderr)
    finally:
        for engine in engines:
            engine.stop()
    title = ENGINE_TITLES[engine_kind].replace("ROWS", str(rows))
    if concurrent:
        title += "; CONCURRENT turns (all modes loaded at once, sharing the CPUs)"
    if restart_every:
        title += f"; engines restarted every {restart_every} rounds"
    if PIN["engine"]:
        title += f"; engines pinned to CPU {sorted(PIN['engine'])}, load to CPUs {sorted(PIN['load'])}"
    return table(results, modes[0], rounds, seconds, concurrency, title, sample_bytes, processes,
                 f"load average (1, 5, 15 min) before {load_before}, after {_load_average()}; "
                 f"{os.cpu_count()} CPUs")


def median_ci(ratios: list[float], draws: int = 2000) -> tuple[float, float]:
    """90% bootstrap interval of the median of same-round ratios: how far the noise lets it move."""
    rng = random.Random(11)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(draws))
    return medians[int(0.05 * draws)], medians[int(0.95 * draws) - 1]


def table(results: dict[str, list[dict]], baseline: str, rounds: int, seconds: float,
          concurrency: int, title: str, sample_bytes: int | None = None, processes: int = 1,
          machine: str = "") -> str:
    lines = [f"engine: {title}; sample_bytes {sample_bytes or 'default (512 KiB)'}; "
             f"{rounds} alternating rounds x {seconds:g} s, {concurrency} connections from {processes} "
             "load-generator processes; ratios = median over rounds of (mode / no hook in the same round) "
             "(90% bootstrap interval of that median)",
             machine, "",
             "| mode | req/s (median) | p95 ms (median) | throughput ratio | p95 ratio "
             "| engine CPU ms/req | CPU ratio | engine CPU, % of one core (min-median) "
             "| + waiting for a CPU (median) | client CPU % "
             "| sampler CPU / engine CPU | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, runs in results.items():
        base_runs = results[baseline]
        rps_ratios = [r["rps"] / b["rps"] for r, b in zip(runs, base_runs)]
        p95_ratios = [r["p95_ms"] / b["p95_ms"] for r, b in zip(runs, base_runs)]
        rps_ratio, p95_ratio = statistics.median(rps_ratios), statistics.median(p95_ratios)
        (rps_low, rps_high), (p95_low, p95_high) = median_ci(rps_ratios), median_ci(p95_ratios)
        cpu_ratio = statistics.median(r["cpu_ms_per_request"] / b["cpu_ms_per_request"]
                                      for r, b in zip(runs, base_runs))
        cores = [100 * r["engine_cores"] for r in runs]
        lines.append(f"| {name} | {statistics.median(r['rps'] for r in runs):.1f} | "
                     f"{statistics.median(r['p95_ms'] for r in runs):.2f} | {rps_ratio:.3f} "
                     f"({rps_low:.2f}-{rps_high:.2f}) | {p95_ratio:.3f} ({p95_low:.2f}-{p95_high:.2f}) | "
                     f"{statistics.median(r['cpu_ms_per_request'] for r in runs):.3f} | "
                     f"{cpu_ratio:.3f} | {min(cores):.0f}-{statistics.median(cores):.0f}% | "
                     f"{100 * statistics.median(r['engine_waiting'] for r in runs):.0f}% | "
                     f"{100 * statistics.median(r['client_cores'] for r in runs):.0f}% | "
                     f"{100 * statistics.median(r['sampler_share'] for r in runs):.3f}% | "
                     f"{sum(r['errors'] for r in runs)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=2.0, help="load per mode per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stand-in", action="store_true", help="a tiny stdlib app (= --engine stand-in)")
    parser.add_argument("--engine", choices=list(ENGINES), default="demo",
                        help="demo (default), stand-in, or small-allocs (many small allocations per request)")
    parser.add_argument("--sample-bytes", type=int, default=None,
                        help="MEMSOAK_SAMPLE_BYTES for the sampled mode (default: the hook's, 512 KiB)")
    parser.add_argument("--modes", default=",".join(DEFAULT_MODES),
                        help=f"comma list, the first is the baseline (default: {', '.join(DEFAULT_MODES)}; "
                             f"all: {', '.join(MODES)})")
    parser.add_argument("--load-processes", type=int, default=2,
                        help="load-generator processes sharing the connections (default 2)")
    parser.add_argument("--rows", type=int, default=4000,
                        help="small-allocs engine: rows per request, ~8 objects each (default 4000)")
    parser.add_argument("--restart-every", type=int, default=4, metavar="N",
                        help="start fresh engine processes every N rounds (default 4; 0 = never): a "
                             "process's memory layout biases it for its whole life")
    parser.add_argument("--concurrent", action="store_true",
                        help="load every mode at once each round instead of in turn (a cross-check on a "
                             "noisy machine: the CPUs are shared, so compare CPU ratios, not saturation)")
    parser.add_argument("--pin", action="store_true",
                        help="engines on the last CPU, load generators on the others (needs 2+ CPUs): "
                             "turns then differ by mode, not by which vCPU the engine ran on")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    parser.add_argument("--hook-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        print(json.dumps(loadgen(args.loadgen, args.seconds, args.concurrency, args.hook_url, args.tag)))
        return
    modes = [m.strip() for m in args.modes.split(",")]
    unknown = [m for m in modes if m not in MODES]
    if (unknown or args.rounds < 1 or args.seconds <= 0 or args.concurrency < 1 or args.rows < 1
            or args.restart_every < 0
            or not 1 <= args.load_processes <= args.concurrency):
        raise SystemExit(f"bench: bad options ({unknown or 'rounds/seconds/concurrency'}): modes are "
                         f"{', '.join(MODES)}; rounds, seconds, concurrency, rows must be positive, "
                         "load-processes within 1..concurrency")
    if args.sample_bytes is not None and not 1024 <= args.sample_bytes <= 1 << 30:
        raise SystemExit("bench: --sample-bytes must be within 1024..1073741824")
    engine_kind = "stand-in" if args.stand_in else args.engine
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("bench: --pin needs 2 or more CPUs; run without it")
        PIN["engine"], PIN["load"] = {cpus[-1]}, set(cpus[:-1])
        os.sched_setaffinity(0, PIN["load"])
    print(bench(args.rounds, args.seconds, args.concurrency, engine_kind, modes, args.sample_bytes,
                args.load_processes, args.rows, args.concurrent, args.restart_every))


if __name__ == "__main__":
    main()
