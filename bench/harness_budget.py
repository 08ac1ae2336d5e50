"""The harness's own memory and disk over a long soak: Locust's RSS slope and series bytes per hour.

    python bench/harness_budget.py --minutes 30 --out /tmp/harness-budget

Starts the demo engine under memsoak-run and one headless Locust (local runner, the plugin
measuring) against it for --minutes, samples Locust's RSS every 5 s from outside (psutil), and at
the end prints, measured in this one run:
  - Locust RSS: first/last, the OLS slope over the second half (after the bounded buffers have had
    time to fill) and over the whole run, with the 24 h projection of the second-half slope;
  - series bytes: raw bytes per row and per hour (series.jsonl and closed segments), the gzip ratio
    of the rows (what closing a segment does), and the 24 h projection against the 50 MB/day budget.
Every process started here is stopped at the end (and on Ctrl-C).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memsoak.engine import DemoEngine  # noqa: E402
from memsoak.reports.rundata import series_files  # noqa: E402

BUDGET_MB_PER_DAY = 50.0
RSS_BUDGET_MB = 250.0   # the harness's RSS after 24 h, stated in docs


def slope_mb_per_h(t: np.ndarray, rss: np.ndarray) -> float:
    if len(t) < 3:
        return float("nan")
    return float(np.polyfit(t / 3600.0, rss / 2**20, 1)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--out", default="/tmp/harness-budget")
    args = parser.parse_args()
    if args.minutes <= 0 or args.users <= 0:
        parser.error("--minutes and --users must be > 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_s = int(args.minutes * 60)
    log = (out / "engine.log").open("w")
    with DemoEngine(log=log) as demo:
        cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "memsoak" / "locustfiles"), "-H", demo.url,
               "--hook-url", demo.hook_url, "--results-dir", str(out / "results"), "--run-id", "soak",
               "--headless", "-u", str(args.users), "-r", str(args.users), "-t", f"{run_s}s", "--only-summary"]
        locust_log = (out / "locust.log").open("w")
        proc = subprocess.Popen(cmd, stdout=locust_log, stderr=subprocess.STDOUT, start_new_session=True)
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        try:
            me = psutil.Process(proc.pid)
            while proc.poll() is None and time.monotonic() - t0 < run_s + 300:
                try:
                    samples.append((time.monotonic() - t0, float(me.memory_info().rss)))
                except psutil.Error:
                    break
                with (out / "locust_rss.jsonl").open("a") as handle:
                    handle.write(json.dumps({"t": samples[-1][0], "rss": samples[-1][1]}) + "\n")
                time.sleep(5)
            code = proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            locust_log.close()
    log.close()
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    # the load phase only: the report at the end imports numpy/scipy/matplotlib (a one-off step)
    load = (t >= 60) & (t <= run_s - 10)
    half = load & (t >= run_s / 2)
    late = slope_mb_per_h(t[half], rss[half])
    whole = slope_mb_per_h(t[load], rss[load])
    at_end = rss[load][-1] if load.any() else rss[-1]
    run_dir = out / "results" / "soak"
    files = series_files(run_dir)
    raw = b"".join(gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes() for p in files)
    on_disk = sum(p.stat().st_size for p in files)
    rows = raw.count(b"\n")
    hours = float(t[-1]) / 3600.0 if len(t) else 0.0
    packed = len(gzip.compress(raw, compresslevel=6))
    raw_per_day = len(raw) / max(rows, 1) * 86400 / 2**20
    # 24 h at 1 Hz: 23 closed segments gzipped plus at most one open hour raw
    gz_per_day = raw_per_day * 23 / 24 * packed / max(len(raw), 1) + raw_per_day / 24
    print(f"harness soak: {hours * 60:.1f} min, locust exit {code}, {rows} rows, {len(samples)} RSS samples")
    print(f"locust RSS: at 60 s {rss[load][0] / 2**20 if load.any() else float('nan'):.1f} MB, end of load "
          f"{at_end / 2**20:.1f} MB, max (report included) {rss.max() / 2**20:.1f} MB")
    print(f"locust RSS slope under load (60 s .. end): {whole:+.2f} MB/h, second half {late:+.2f} MB/h; 24 h "
          f"projection {at_end / 2**20 + late * (24 - hours):.1f} MB (budget {RSS_BUDGET_MB:.0f} MB)")
    print(f"series: {len(raw) / max(rows, 1):.0f} B/row raw, {len(raw) / max(hours, 1e-9) / 2**20:.2f} MB/h raw, "
          f"on disk {on_disk / 2**20:.2f} MB; gzip ratio {len(raw) / max(packed, 1):.1f}x")
    print(f"series 24 h at 1 Hz: {raw_per_day:.1f} MB raw, {gz_per_day:.1f} MB with closed hourly segments "
          f"gzipped (budget {BUDGET_MB_PER_DAY:.0f} MB/day)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
