"""Every row of issue 10's fault table, against the real demo engine or a real fake-hook process.

Each live fault asserts the outcome, the exit code, the time to react (the run ends well before its
run time, or within a bound after the fault), that no recorded row was lost, and that `memsoak
report` on its run directory renders and states the outcome.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from memsoak.engine import free_port
from memsoak_procs import (FAST_MIX, LOCUSTFILES, Background, Procs, background_run, output, read_jsonl, wait,
                           wait_for)
from memsoak.reports.outcome import EXIT_CODES, title

FAKE_HOOK = Path(__file__).resolve().parent / "fake_hook.py"
NOWHERE = "http://127.0.0.1:9"
# Floors no short run reaches: where a fault's own outcome is under test, a proven leak (which
# rightly wins over it) must not be possible in the first minute's warm-up growth.
NO_LEAK_CALL = ["--heap-min-growth-mb", "500", "--rss-min-growth-mb", "500", "--objects-min-growth", "1e9",
                "--heap-blocks-min-growth", "1e9"]   # nothing listens: validation must answer before the hook check


def record(fault: str, **facts: Any) -> None:
    """Measured facts (time to react, rows) appended to $MEMSOAK_FAULT_LOG when set (for the notes)."""
    path = os.environ.get("MEMSOAK_FAULT_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"fault": fault, **facts}) + "\n")


def locust(procs: Procs, folder: Path, host: str, hook: str, *extra: str, run_time: int = 20,
           users: int = 4, name: str = "locust", env: dict[str, str] | None = None,
           timeout_s: float = 240) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "-H", host, "--hook-url", hook,
           "--results-dir", str(folder / "results"), "--run-id", "run", "--only-summary", "--headless",
           "-u", str(users), "-r", str(users), "-t", f"{run_time}s", *FAST_MIX, *extra]
    started = time.monotonic()
    proc = procs.start(cmd, name, env={**os.environ, **(env or {})})
    code = wait(proc, timeout_s)
    return code, time.monotonic() - started, output(proc)


def fake_hook(procs: Procs, mode: str, token: str = "") -> str:
    port = free_port()
    proc = procs.start([sys.executable, str(FAKE_HOOK), str(port), mode, *([token] if token else [])],
                       f"hook-{mode}")
    wait_for(lambda: "ready" in output(proc), 60, f"the fake hook ({mode}) to listen")
    return f"http://127.0.0.1:{port}"


def memsoak(*args: Any, timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memsoak.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout_s)


def rows_kept(run: Path) -> list[dict[str, Any]]:
    """Every row on disk, none lost in between (seqs contiguous), and the report counts them all."""
    rows = read_jsonl(run / "series.jsonl")
    seqs = [row["seq"] for row in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True, seqs
    return rows


def states(run: Path, outcome: str) -> dict[str, Any]:
    """`memsoak report RUN` renders every file and states the outcome with its own code."""
    code = EXIT_CODES[outcome]
    done = memsoak("report", run)
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert f"{title(outcome)} (exit {code})" in done.stdout.splitlines()[0]
    assert (run / "summary.md").read_text().startswith(f"## memsoak: {title(outcome)} (exit {code})")
    assert f'<span class="{outcome}">{title(outcome)}</span> (exit {code})' in (run / "report.html").read_text()
    report = json.loads((run / "report.json").read_text())
    assert report["outcome"] == outcome and report["exit_code"] == code
    junit = (run / "junit.xml").read_text()
    if outcome != "pass":
        assert f"{title(outcome)}:" in junit or outcome in ("leak", "engine_lost", "rss_limit")
    return report


# --- live faults ---------------------------------------------------------------------------------
# Each run is a background fixture (memsoak_procs.background_run): it drives the run and returns
# what happened; the test below it holds the assertions.

@background_run("faults")
def wrong_key(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    return locust(procs, folder, demo.url, demo.hook_url, "--api-key", "wrong", run_time=120)


@pytest.mark.slow
def test_every_request_401_ends_early_with_13_naming_the_key(wrong_key: Background) -> None:
    code, took, out = wrong_key.result()
    assert code == 13, out[-3000:]
    assert took < 90, f"ended after {took:.0f} s: the run went on under a wrong key"
    assert "--api-key" in out and "Traceback" not in out
    states(wrong_key.folder / "results" / "run", "bad_config")
    record("wrong_key", code=code, took_s=round(took, 1), run_time_s=120)


def _sigterm_after_8_rows(run: Background, procs: Procs, folder: Path, *extra_files: Path,
                          env: dict[str, str] | None = None, second_after: str = "") -> tuple[int, float, str]:
    """A 300 s run, SIGTERM once 8 rows are on disk (and again once `second_after` is printed):
    the exit code, the seconds from the first signal to the exit, the output."""
    demo = run.engine(folder)
    files = ",".join([str(LOCUSTFILES), *map(str, extra_files)])
    series = folder / "results" / "run" / "series.jsonl"
    proc = procs.start([sys.executable, "-m", "locust", "-f", files, "-H", demo.url, "--hook-url", demo.hook_url,
                        "--results-dir", str(folder / "results"), "--run-id", "run", "--only-summary", "--headless",
                        "-u", "4", "-r", "4", "-t", "300s", *FAST_MIX, *NO_LEAK_CALL], "locust",
                       env={**os.environ, **(env or {})})
    wait_for(lambda: series.exists() and len(read_jsonl(series)) >= 8, 120, "8 rows")
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    if second_after:
        wait_for(lambda: second_after in output(proc), 60, f"{second_after!r} in the output")
        proc.send_signal(signal.SIGTERM)   # what `docker compose stop` or an impatient CI does
    code = wait(proc, 120)
    return code, time.monotonic() - sent, output(proc)


@background_run("faults")
def second_sigterm(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    return _sigterm_after_8_rows(run, procs, folder, Path(__file__).resolve().parent / "slow_finalize.py",
                                 env={"MEMSOAK_TEST_SLOW_FINAL_S": "15"}, second_after="final snapshots delayed")


@pytest.mark.slow
def test_a_second_sigterm_while_the_report_is_written_waits_for_it_and_is_never_0(second_sigterm: Background) -> None:
    code, _reacted, out = second_sigterm.result()
    run = second_sigterm.folder / "results" / "run"
    assert code == 17, out[-3000:]   # before: exit 0 and no report
    report = states(run, "interrupted")
    assert len(rows_kept(run)) == report["samples"]
    record("second_sigterm", code=code, rows=report["samples"])


@background_run("faults")
def hook_busy(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "busy-6-18")   # 12 s of 429s: four times --engine-lost-polls 3
    return locust(procs, folder, demo.url, hook, "--engine-lost-polls", "3", run_time=30)


@pytest.mark.slow
def test_a_hook_refusing_polls_429_for_a_while_is_not_lost_and_no_row_is_missed(hook_busy: Background) -> None:
    code, _took, out = hook_busy.result()
    assert code in (0, 18), out[-3000:]   # not engine lost, not a measurement failure
    assert "the hook is busy" in out and "engine lost" not in out.lower()
    rows = rows_kept(hook_busy.folder / "results" / "run")   # the refused seconds were read back from the ring: no gap
    assert len(rows) >= 25, len(rows)
    record("hook_busy", code=code, rows=len(rows))


@background_run("faults")
def rate_limited(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder, engine_args=["--rate-limit-rps", "3", "--rate-limit-burst", "3"])
    return locust(procs, folder, demo.url, demo.hook_url, *NO_LEAK_CALL, run_time=25, users=6)


@pytest.mark.slow
def test_429s_above_the_failure_ratio_are_invalid_load_with_failures_everywhere(rate_limited: Background) -> None:
    code, took, out = rate_limited.result()
    run = rate_limited.folder / "results" / "run"
    assert code == 16, out[-3000:]
    assert "HTTP 429" in out   # the console lists failures by name and status
    report = states(run, "invalid_load")
    assert any(f["status"] == 429 for f in report["load"]["failures_by_name"])
    assert report["load"]["ratio"] > 0.01
    assert "| 429 |" in (run / "summary.md").read_text()
    junit = (run / "junit.xml").read_text()
    assert 'name="run.load"' in junit and "429" in junit.split('name="run.load"')[1].split("</testcase>")[0]
    assert len(rows_kept(run)) == report["samples"]
    record("rate_limited", code=code, took_s=round(took, 1), ratio=report["load"]["ratio"], rows=report["samples"])


@background_run("faults")
def interrupted(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    return _sigterm_after_8_rows(run, procs, folder)


@pytest.mark.slow
def test_sigterm_half_way_is_interrupted(interrupted: Background) -> None:
    code, reacted, out = interrupted.result()
    run = interrupted.folder / "results" / "run"
    assert code == 17, out[-3000:]
    assert reacted < 60
    report = states(run, "interrupted")
    assert len(rows_kept(run)) == report["samples"]
    record("interrupted", code=code, exit_after_signal_s=round(reacted, 1), rows=report["samples"])


@background_run("faults")
def short_run(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    return locust(procs, folder, demo.url, demo.hook_url, *NO_LEAK_CALL, run_time=6)


@pytest.mark.slow
def test_too_few_rows_is_insufficient_evidence(short_run: Background, tmp_path: Path) -> None:
    code, _took, out = short_run.result()
    run = short_run.folder / "results" / "run"
    assert code == 18, out[-3000:]
    report = states(run, "insufficient_evidence")
    assert len(rows_kept(run)) == report["samples"] <= 10
    record("short_run", code=code, rows=report["samples"])
    # one row: no verdict table at all, still not a PASS
    report = states(_synthetic_run(tmp_path / "one", rows=1), "insufficient_evidence")
    assert report["samples"] == 1 and report["signals"] == []


@background_run("faults")
def trickle_samples(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "trickle-samples")
    return locust(procs, folder, demo.url, hook, "--engine-lost-polls", "3", run_time=120)


@pytest.mark.slow
def test_a_hook_trickling_samples_is_lost_within_the_poll_deadlines(trickle_samples: Background) -> None:
    code, took, out = trickle_samples.result()
    assert code == 12, out[-3000:]
    # 3 polls of at most 5 s each (+1 s apart) and the stop: not the run time, and not for ever
    assert took < 90, f"took {took:.0f} s"
    assert "did not answer within 5 s" in out
    states(trickle_samples.folder / "results" / "run", "engine_lost")
    record("trickle_samples", code=code, took_s=round(took, 1), run_time_s=120)


@background_run("faults")
def trickle_health(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str, int]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "trickle-health")
    code, took, out = locust(procs, folder, demo.url, hook, run_time=120)
    return code, took, out, demo.health()["completions"]


@pytest.mark.slow
def test_a_hook_trickling_health_at_start_fails_within_the_start_deadline(trickle_health: Background) -> None:
    code, took, out, completions = trickle_health.result()
    assert code == 13, out[-3000:]
    assert took < 60 and "did not answer within 10 s" in out
    assert completions == 0   # no load was sent
    record("trickle_health", code=code, took_s=round(took, 1))


@background_run("faults")
def disk_full(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str, Path]:
    """A 150 s run whose results directory is a 512 KiB tmpfs filled to its last 48 KiB. What the
    run kept there is copied out (the tmpfs is unmounted when the run ends): the test reports on it."""
    disk = folder / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        demo = run.engine(folder)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"x" * max(0, free - 48 * 1024))
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "-H", demo.url, "--hook-url", demo.hook_url,
               "--results-dir", str(disk), "--run-id", "run", "--only-summary", "--headless", "-u", "4", "-r", "4",
               "-t", "150s", *FAST_MIX, *NO_LEAK_CALL]
        started = time.monotonic()
        proc = procs.start(cmd, "locust")
        code = wait(proc, 240)
        took = time.monotonic() - started
        shutil.copytree(disk / "run", folder / "run")
        return code, took, output(proc), folder / "run"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.slow
def test_disk_full_mid_run_stops_the_load_and_is_measurement_failed(disk_full: Background) -> None:
    code, took, out, run = disk_full.result()
    assert code == 19, out[-3000:]
    assert took < 120, f"the load ran on for {took:.0f} s after the disk filled"
    assert "measurement failed" in out and "Traceback" not in out
    rows = rows_kept(run)
    report = states(run, "measurement_failed")
    assert report["samples"] == len(rows) > 0
    assert "missing" in report["headline"]
    record("disk_full", code=code, took_s=round(took, 1), run_time_s=150, rows=len(rows))


@background_run("faults")
def hook_list(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "list-samples")
    return locust(procs, folder, demo.url, hook, "--engine-lost-polls", "3", run_time=120)


@pytest.mark.slow
def test_hook_answering_a_list_is_measurement_failed(hook_list: Background) -> None:
    code, took, out = hook_list.result()
    assert code == 19, out[-3000:]
    assert took < 90 and "answered a JSON list" in out and "Traceback" not in out
    report = states(hook_list.folder / "results" / "run", "measurement_failed")
    assert "garbage" in report["headline"]
    record("hook_list", code=code, took_s=round(took, 1), run_time_s=120)


@background_run("faults")
def hook_typed(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "garbage-after-10")
    return locust(procs, folder, demo.url, hook, "--engine-lost-polls", "3", run_time=120)


@pytest.mark.slow
def test_hook_answering_wrong_types_keeps_the_good_rows_and_fails_the_measurement(hook_typed: Background) -> None:
    code, took, out = hook_typed.result()
    run = hook_typed.folder / "results" / "run"
    assert code == 19, out[-3000:]
    assert took < 100 and "rss_bytes='big'" in out and "Traceback" not in out
    rows = rows_kept(run)
    assert len(rows) >= 3 and all(isinstance(row["rss_bytes"], int) for row in rows)
    report = states(run, "measurement_failed")
    assert report["samples"] == len(rows)
    record("hook_typed", code=code, took_s=round(took, 1), run_time_s=120, rows=len(rows))


@background_run("faults")
def token_redacted(run: Background, procs: Procs, folder: Path) -> tuple[int, float, str]:
    demo = run.engine(folder)
    hook = fake_hook(procs, "token", token="s3cr3t-t0ken")
    return locust(procs, folder, demo.url, hook, "--hook-token", "s3cr3t-t0ken", run_time=8)


@pytest.mark.slow
def test_the_hook_token_never_reaches_the_run_directory(token_redacted: Background) -> None:
    code, _took, out = token_redacted.result()
    run = token_redacted.folder / "results" / "run"
    assert code in (0, 18), out[-3000:]   # a short run: pass or insufficient, never a hook error
    argv = json.loads((run / "run.json").read_text())["argv"]
    assert "--hook-token" in argv and "***" in argv
    for path in run.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-t0ken" not in path.read_bytes(), path


# --- faults at the boundary (no load is ever sent) ----------------------------------------------

BAD_VALUES = [
    (["--rss-limit-mb", "-5"], {}, "--rss-limit-mb"),
    (["--engine-lost-polls", "-3"], {}, "--engine-lost-polls"),
    (["--sample-interval-s", "-1"], {}, "--sample-interval-s"),
    (["--growth-threshold-mb", "-5"], {}, "--growth-threshold-mb"),
    (["--top-n", "0"], {}, "--top-n"),
    (["--results-dir", ""], {}, "--results-dir"),
    ([], {"MEMSOAK_RSS_LIMIT_MB": "abc"}, "environment variable MEMSOAK_RSS_LIMIT_MB"),
    (["--hook-url", "http://127.0.0.1:99999"], {}, "--hook-url"),
]


@pytest.mark.slow
def test_bad_flags_and_variables_are_one_line_each_and_exit_13(tmp_path: Path) -> None:
    def one(case: tuple[list[str], dict[str, str], str]) -> tuple[str, int, float, str]:
        args, env, named = case
        folder = tmp_path / str(abs(hash(named)))
        folder.mkdir(exist_ok=True)
        procs = Procs(folder)
        try:
            hook = [] if "--hook-url" in args else ["--hook-url", NOWHERE]
            cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "-H", NOWHERE, *hook,
                   "--results-dir", str(folder / "results"), "--headless", "-u", "1", "-t", "30s", *args]
            started = time.monotonic()
            proc = procs.start(cmd, "locust", env={**os.environ, **env})
            code = wait(proc, 180)
            return named, code, time.monotonic() - started, output(proc)
        finally:
            procs.kill_all()

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, BAD_VALUES))
    for named, code, _took, out in results:
        lines = [line for line in out.splitlines() if line.startswith("memsoak:")]
        assert code == 13, (named, out[-2000:])
        assert len(lines) == 1 and lines[0].startswith(f"memsoak: {named} = "), (named, out[-2000:])
        assert "Traceback" not in out


@pytest.mark.slow
def test_results_dir_that_is_a_file_or_unwritable_is_13_before_any_load(engine: Any, procs: Procs,
                                                                       tmp_path: Path) -> None:
    demo = engine()
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    for bad, words in ((a_file, "is a file"), (Path("/proc/memsoak-results"), "not writable")):
        proc = procs.start([sys.executable, "-m", "locust", "-f", str(LOCUSTFILES), "-H", demo.url, "--hook-url",
                            demo.hook_url, "--results-dir", str(bad), "--headless", "-u", "2", "-t", "30s"],
                           f"locust-{bad.name}")
        started = time.monotonic()
        assert wait(proc, 120) == 13, output(proc)[-2000:]
        assert time.monotonic() - started < 60
        lines = [line for line in output(proc).splitlines() if line.startswith("memsoak:")]
        assert len(lines) == 1 and words in lines[0] and "--results-dir" in lines[0]
        assert "Traceback" not in output(proc)
    assert demo.health()["completions"] == 0


def _synthetic_run(folder: Path, rows: int = 40) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"run_id": folder.name, "settings": {}}))
    with (folder / "series.jsonl").open("w") as handle:
        for n in range(rows):
            handle.write(json.dumps({"seq": n + 1, "t": float(n), "rss_bytes": 50_000_000 + 1000 * (n % 5),
                                     "requests_total": 10 * n, "failures_total": 0}) + "\n")
    (folder / "events.jsonl").write_text(json.dumps({"type": "test_start", "t": 0.0, "t_wall": 1.0}) + "\n"
                                         + json.dumps({"type": "stop", "t": float(rows), "reason": "duration",
                                                       "last_seq": rows}) + "\n")
    (folder / "requests.json").write_text(json.dumps([{"method": "GET", "name": "/x", "num_requests": 10 * rows,
                                                       "num_failures": 0, "failures": {}}]))
    return folder


@pytest.mark.slow
def test_report_on_broken_files_is_one_line_or_skips_and_counts(tmp_path: Path) -> None:
    run = _synthetic_run(tmp_path / "run")
    assert memsoak("report", run).returncode == 0
    (run / "run.json").write_bytes(bytes(range(256)) * 4)   # binary
    with (run / "series.jsonl").open("ab") as handle:
        handle.write(b"\xff\xfe\xfa not utf-8\n")
        handle.write(json.dumps({"seq": 99, "t": 99.0, "rss_bytes": "big"}).encode() + b"\n")
    done = memsoak("report", run)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["samples"] == 40
    assert any("2 unreadable line(s)" in note for note in report["notes"])
    assert any("run.json unreadable" in note for note in report["notes"])
    (run / "run.json").write_text(json.dumps({"run_id": "x", "settings": [1, 2]}))   # wrong type
    done = memsoak("report", run)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    for pair, words in ((("--set", "growth_threshold_mb=-5"), "must be > 0"), (("--set", "top_n=0"), "must be >= 1"),
                        (("--set", "alpha=x"), "not a float")):
        done = memsoak("report", run, *pair)
        assert done.returncode == 13 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_compare_json_unwritable_is_13_and_no_verdict(tmp_path: Path) -> None:
    base = _synthetic_run(tmp_path / "base")
    done = memsoak("compare", base, base, "--json", "/proc/nope/c.json")
    assert done.returncode == 13 and "PASS" not in done.stdout and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--json" in done.stderr


@pytest.mark.parametrize("args, flag", [(["--grace", "-5"], "--grace"),
                                        (["--tracemalloc-frames", "-1"], "--tracemalloc-frames")])
def test_memsoak_run_bad_flags_are_one_line(args: list[str], flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "memsoak.profiler.run", *args, "--", "true"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and flag in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.slow
def test_any_local_caller_gets_a_bounded_cost(engine: Any) -> None:
    demo = engine(interval_s=0.01)   # 100 samples/s: thousands held within seconds
    wait_for(lambda: requests.get(f"{demo.hook_url}/health", timeout=10).json()["last_seq"] >= 3000, 120,
             "3000 samples in the ring")

    def read_all(_n: int) -> tuple[int, int, str]:
        resp = requests.get(f"{demo.hook_url}/samples", params={"since": 0, "limit": 100_000}, timeout=60)
        held = len(resp.json()["samples"]) if resp.status_code == 200 else 0
        return resp.status_code, held, resp.headers.get("Retry-After", "")

    # sent at once: the shared budget (20,000 samples, then 2,000/s) cannot refill between them
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(read_all, range(16)))
    statuses = [status for status, _held, _retry in answers]
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    assert max(held for _s, held, _r in answers) <= 5000            # paged: never the whole ring
    assert all(int(retry) >= 1 for status, _h, retry in answers if status == 429)
    assert requests.post(f"{demo.hook_url}/snapshots/s0", timeout=120).status_code == 200
    # every memory-route call draws on the budget, even one naming unknown labels (cheap to send)
    # (sent at once, so the budget's refill of one call per 4 s cannot keep up however slow the machine)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: requests.get(f"{demo.hook_url}/diff", params={"base": "s0", "head": f"x{n}"},
                                                       timeout=60).status_code, range(20)))
    assert 404 in answers and 429 in answers and set(answers) <= {404, 429}
    assert requests.get(f"{demo.url}/api/health", timeout=10).status_code == 200


def test_kill_9_of_memsoak_run_takes_the_engine_with_it(engine: Any) -> None:
    demo = engine()
    children = demo.engine_processes()
    assert children
    os.kill(demo.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphaned: {[p.pid for p in alive]}"
    assert time.monotonic() - killed < 10


def test_series_segments_are_gzipped_and_every_row_survives_a_crash_between_steps(tmp_path: Path) -> None:
    from memsoak.rundir import RunDir
    from memsoak.reports.rundata import load_run

    rundir = RunDir(tmp_path, "run")
    rundir.segment_rows = 5
    rundir.append_event("test_start", 0.0)
    for n in range(1, 13):
        rundir.append_row({"seq": n, "t": float(n), "rss_bytes": 1000 + n})
    rundir.close()
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("series*")) == ["series-000001.jsonl.gz", "series-000002.jsonl.gz",
                                                          "series.jsonl"]
    assert [r["seq"] for r in load_run(run).rows] == list(range(1, 13))
    # a crash after gzip, before the plain file was removed: no row twice
    (run / "series-000002.jsonl").write_bytes(gzip.open(run / "series-000002.jsonl.gz").read())
    assert [r["seq"] for r in load_run(run).rows] == list(range(1, 13))
    # a crash mid-gzip: the .gz.tmp is ignored and the plain segment read
    (run / "series-000002.jsonl.gz").rename(run / "series-000002.jsonl.gz.tmp")
    assert [r["seq"] for r in load_run(run).rows] == list(range(1, 13))


@pytest.mark.slow
def test_demo_with_a_bad_engine_flag_names_it_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "memsoak.cli", "demo", "--tracemalloc-frames", "-1",
                           "--duration", "10"], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 13, done.stderr[-2000:]
    assert "--tracemalloc-frames" in done.stderr and "--leak" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("duration", ["0", "0s", "0h0m"])
def test_demo_refuses_a_zero_duration_in_one_line(tmp_path: Path, duration: str) -> None:
    done = subprocess.run([sys.executable, "-m", "memsoak.cli", "demo", "--duration", duration],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 13, done.stderr[-2000:]
    assert "--duration" in done.stderr and "time limit" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()
