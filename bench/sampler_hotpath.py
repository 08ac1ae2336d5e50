"""The sampled tracker's per-allocation cost, counted by cachegrind rather than timed.

Timing a few-percent difference on a shared machine is noise-bound; instructions executed (Ir) and
simulated first-level data-cache misses (D1mr + D1mw) are not. Each case runs a Python workload in a
child under `valgrind --tool=cachegrind --cache-sim=yes` twice, with N and 2N iterations; the
difference is the cost of N iterations alone (interpreter start-up and imports cancel out). Printed:
per case, the counts without the tracker and with it, and their ratios.

Workloads (the function `work` is the small-allocs engine's request body in bench/hook_overhead.py):
- `engine`: `work()` repeated, the default rate (512 KiB), a small heap (few live samples);
- `big-heap`: the same with HELD MB of live small objects held and a 16x lower mean (32 KiB), so
  ~HELD*1024/32 samples stay live: the pointer table is as large as a ~40x larger heap's would be at
  the default rate, and every free probes it.

    python bench/sampler_hotpath.py                       # both workloads, this tree's extension
    python bench/sampler_hotpath.py --so OTHER.so         # compare another build of the extension
    python bench/sampler_hotpath.py --whole-engine small-allocs  # an engine process as a whole
    python bench/sampler_hotpath.py --whole-engine demo

`--whole-engine` runs bench/hook_overhead.py's small-allocs engine (or the demo engine, SQLite, LLM
latency 0) under cachegrind (instructions only) unhooked, and under memsoak-run with allocation
tracking off and sampled (hook interval 60 s, i.e. the per-request path only), sends it N then 3N
requests one connection each, and prints instructions per request (run(3N) - run(N)) / 2N per
configuration and their ratio to the unhooked engine.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROWS = 4000


def work(text: str, n: int = ROWS) -> dict:
    words = text.split()
    rows = [{"i": i, "word": words[i % len(words)], "pair": (i, i * 2), "tag": f"w{i % 17}"} for i in range(n)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["tag"]] = counts.get(row["tag"], 0) + len(row["word"])
    ranked = sorted(rows, key=lambda row: (row["tag"], -row["i"]))[:20]
    return {"counts": counts, "top": [[r["i"], r["word"]] for r in ranked]}


def child(so: str | None, sample_bytes: int, held_mb: int, iterations: int) -> None:
    if so:
        spec = importlib.util.spec_from_file_location("_memsoak_sampler", so)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.start(sample_bytes=float(sample_bytes), max_frames=32, seed=12345)
    held = [b"x" * 200 + i.to_bytes(4, "little") for i in range(held_mb * 1024 * 1024 // 237)]
    for k in range(iterations):
        work(f"message {k}: how much memory does this take?")
    if so:
        stats = module.stats()
        print(f"live samples {stats['live_samples']}, samples {stats['samples']}", file=sys.stderr)
    del held


def cachegrind(args: list[str]) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=yes",
                               f"--cachegrind-out-file={folder}/out", sys.executable, __file__, *args],
                              capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "PYTHONHASHSEED": "0"})  # same dict layouts every run
    if done.returncode != 0:
        raise SystemExit(f"sampler_hotpath: the child failed: {done.stderr.strip().splitlines()[-3:]}")
    counts = {}
    for key in ("I refs", "D1 misses", "LLd misses"):
        match = re.search(r"==\d+== %s:\s+([\d,]+)" % key.replace(" ", r"\s+"), done.stderr)
        if match is None:
            raise SystemExit(f"sampler_hotpath: no {key!r} in cachegrind's summary")
        counts[key] = int(match.group(1).replace(",", ""))
    return counts


def _post(port: int, path: str, body: bytes) -> bytes:
    """One request on its own connection (Connection: close); returns the reply's body."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"X-API-Key: demo-key\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), len(body), body))
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or int(head[9:12]) >= 400:
        raise ValueError(f"engine answered {head[:40]!r}")
    return payload


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def whole_engine_instructions(engine: str, config: str, requests: int, folder: str) -> int:
    port, log = _free_port(), os.path.join(folder, f"{engine}-{config}-{requests}.log")
    if engine == "demo":
        target = ["-m", "memsoak.demo_engine", "--host", "127.0.0.1", "--port", str(port), "--llm-latency-ms", "0",
                  "--rate-limit-rps", "0", "--duplicate-window-s", "0"]
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from hook_overhead import SMALL_ALLOCS
        script = os.path.join(folder, "small_allocs.py")
        with open(script, "w") as out:
            out.write(SMALL_ALLOCS)
        target = [script, str(port)]
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               f"--log-file={log}", sys.executable, *target]
    if config != "no hook":
        command = [sys.executable, "-m", "memsoak.profiler.run", "--port", str(_free_port()), "--interval", "60",
                   "--alloc-mode", config, "--", *command]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                created = _post(port, "/api/engine/chat/sessions", b'{"title": "cachegrind"}')
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"sampler_hotpath: the engine ({engine}, {config}) did not start")
                time.sleep(0.5)
        session = json.loads(created)["id"]
        for k in range(requests):
            if engine == "demo" and k and k % 20 == 0:  # fresh sessions now and then, as real load has
                session = json.loads(_post(port, "/api/engine/chat/sessions", b'{"title": "cachegrind"}'))["id"]
            _post(port, f"/api/engine/chat/sessions/{session}/messages",
                  b'{"content": "message %d: how much memory does this take?"}' % k)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    with open(log) as text:
        match = re.search(r"I\s+refs:\s+([\d,]+)", text.read())
    if match is None:
        raise SystemExit(f"sampler_hotpath: no instruction count in {log}")
    return int(match.group(1).replace(",", ""))


def whole_engine(engine: str) -> None:
    low_n, high_n = (10, 30) if engine == "small-allocs" else (40, 120)
    print(f"{engine} engine under cachegrind: instructions per request = (run({high_n}) - run({low_n})) "
          f"/ {high_n - low_n}\n")
    print("| engine | instructions per request | ratio to no hook |")
    print("|---|---:|---:|")
    base = None
    with tempfile.TemporaryDirectory() as folder:
        for config in ("no hook", "off", "sampled"):
            low, high = (whole_engine_instructions(engine, config, n, folder) for n in (low_n, high_n))
            per_request = (high - low) / (high_n - low_n)
            base = base or per_request
            label = config if config == "no hook" else f"memsoak-run, allocation tracking {config}"
            print(f"| {label} | {per_request:,.0f} | {per_request / base:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--so", help="the extension to measure (default: this tree's build)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--held-mb", type=int, default=48, help="big-heap workload: MB held live")
    parser.add_argument("--workloads", default="engine,big-heap")
    parser.add_argument("--whole-engine", choices=["small-allocs", "demo"],
                        help="instructions per request of a whole engine process instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-so", default="", help=argparse.SUPPRESS)
    parser.add_argument("--sample-bytes", type=int, default=512 * 1024, help=argparse.SUPPRESS)
    parser.add_argument("--held", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child_so or None, args.sample_bytes, args.held, args.iterations)
        return
    if args.whole_engine:
        whole_engine(args.whole_engine)
        return
    so = args.so
    if so is None:
        folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "memsoak", "profiler")
        built = [f for f in os.listdir(folder) if f.startswith("_memsoak_sampler") and f.endswith(".so")]
        if not built:
            raise SystemExit("sampler_hotpath: no built extension: run `python setup.py build_ext --inplace`")
        so = os.path.join(folder, built[0])
    workloads = {"engine": (512 * 1024, 0), "big-heap": (32 * 1024, args.held_mb)}
    print(f"extension {so}; {args.iterations} iterations of work() ({ROWS} rows); counts of N iterations "
          "= run(2N) - run(N)\n")
    print("| workload | tracker | I refs | D1 misses | LLd misses | I ratio | D1 miss ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.workloads.split(","):
        sample_bytes, held = workloads[name]
        base = None
        for label, child_so in (("off", ""), ("sampled", so)):
            runs = [cachegrind(["--child", "--child-so", child_so, "--sample-bytes", str(sample_bytes),
                                "--held", str(held), "--iterations", str(n)])
                    for n in (args.iterations, 2 * args.iterations)]
            counts = {key: runs[1][key] - runs[0][key] for key in runs[0]}
            base = base or counts
            print(f"| {name} (mean {sample_bytes // 1024} KiB, {held} MB held) | {label} | "
                  f"{counts['I refs']:,} | {counts['D1 misses']:,} | {counts['LLd misses']:,} | "
                  f"{counts['I refs'] / base['I refs']:.4f} | {counts['D1 misses'] / base['D1 misses']:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
