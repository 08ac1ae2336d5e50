"""One soak run on the master (or local runner): poll, join, limit, snapshot, and finalize.

Two greenlets run while the test runs: the poller pulls new samples since the last sequence number,
joins each with Locust's stats into a row and appends it to series.jsonl at once, watches the RSS
limit and counts failed polls (N in a row: the engine is lost); the snapshotter takes the tracemalloc
baseline when warm-up ends and checkpoints after it, keeping each interval's diff. `finalize` runs
once, from whichever of test_stop / quitting comes first, and turns the run directory into a report.
"""
from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable

import gevent
from gevent.event import Event

from memsoak.hook import HookClient, HookError
from memsoak.plugin import rows as rowlib
from memsoak.plugin.arguments import baseline_at_s, checkpoint_every_s, option
from memsoak.rundir import RunDir

log = logging.getLogger("memsoak")
SNAPSHOT_TIMEOUT_S = 120.0   # a snapshot or diff of a big heap takes a while inside the engine
RECENT_ROWS = 7200           # what the live UI keeps in memory (2 h at 1 s)
FINAL_BUDGET_S = 90.0        # a struggling engine must not keep the harness from writing the report
FALLBACK_CODES = {"engine_lost": 12, "rss_limit": 11}


class Soak:
    def __init__(self, environment: Any, rundir: RunDir, health: dict[str, Any],
                 stop_locust: Callable[[], None]) -> None:
        self.environment = environment
        self.options = environment.parsed_options
        self.rundir = rundir
        self.stop_locust = stop_locust
        url, token = option(self.options, "hook_url"), option(self.options, "hook_token")
        self.poll_client = HookClient(url, token)
        self.snap_client = HookClient(url, token, timeout_s=SNAPSHOT_TIMEOUT_S)
        self.t0 = time.monotonic()
        self.last_seq = int(health.get("last_seq") or 0)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_ROWS)
        self.stop_reason: str | None = None
        self.engine_lost = False
        self.last_poll_error = ""
        self.labels: list[str] = []
        self.finalized = False
        self.exit_code: int | None = None
        self.console_text = ""
        self.report_path = ""
        self._stopping = Event()
        self._greenlets: list[gevent.Greenlet] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.rundir.append_event("test_start", 0.0)
        self._greenlets = [gevent.spawn(self._poll_loop), gevent.spawn(self._snapshot_loop)]

    # --- polling ----------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        failures = 0
        interval = max(0.05, float(option(self.options, "sample_interval_s")))
        lost_after = max(1, int(option(self.options, "engine_lost_polls")))
        while not self._stopping.is_set():
            try:
                self.poll_once()
                failures = 0
            except HookError as exc:
                failures += 1
                self.last_poll_error = str(exc)
                log.warning("memsoak: poll %d/%d failed: %s", failures, lost_after, exc)
                if failures >= lost_after:
                    self.engine_lost = True
                    self.rundir.append_event("engine_lost", self.now(), last_seq=self.last_seq,
                                             error=str(exc))
                    log.error("memsoak: engine lost: hook unreachable for %d polls in a row (last sample "
                              "seq %d): %s", failures, self.last_seq, exc)
                    self.request_stop("engine_lost")
                    return
            self._stopping.wait(timeout=interval)

    def poll_once(self) -> int:
        """Fetch, join and append every sample newer than the last one; returns how many."""
        answer = self.poll_client.samples(since=self.last_seq)
        samples = [s for s in answer.get("samples") or [] if int(s.get("seq", 0)) > self.last_seq]
        if answer.get("dropped"):
            log.warning("memsoak: the hook dropped %s samples before they were read", answer["dropped"])
        if not samples:
            return 0
        runner = self.environment.runner
        for row in rowlib.join(samples, rowlib.load_side(runner), self.now()):
            self.rundir.append_row(row)
            self.recent.append(row)
            self.last_seq = max(self.last_seq, int(row["seq"]))
            self._check_rss(row)
        return len(samples)

    def _check_rss(self, row: dict[str, Any]) -> None:
        limit_mb = float(option(self.options, "rss_limit_mb"))
        # The whole process tree counts: a multi-worker server dies of its total, not of one worker.
        rss = row.get("tree_rss_bytes") or row.get("rss_bytes")
        if limit_mb <= 0 or rss is None or self.stop_reason:
            return
        limit = int(limit_mb * 1024 * 1024)
        if rss > limit:
            self.rundir.append_event("rss_limit", self.now(), rss_bytes=rss, limit_bytes=limit)
            log.error("memsoak: engine RSS %.1f MB is above --rss-limit-mb %.0f: stopping the test",
                      rss / 2**20, limit_mb)
            self.request_stop("rss_limit")

    def request_stop(self, reason: str) -> None:
        """Stop the Locust run for `reason`; the first reason wins."""
        if self.stop_reason is None:
            self.stop_reason = reason
            if not self.finalized:
                gevent.spawn(self.stop_locust)  # never from inside a greenlet that stopping will kill

    # --- snapshots --------------------------------------------------------------------------
    def _snapshot_loop(self) -> None:
        if self._stopping.wait(timeout=baseline_at_s(self.options)):
            return
        taken = self.take("baseline", types=True)
        # After the baseline, not before: taking it costs the engine memory, a step that belongs
        # to the warm-up and not to the trend.
        self.rundir.append_event("warmup_end", self.now())
        if not taken:
            return
        every = checkpoint_every_s(self.options)
        number = 0
        run_time = getattr(self.options, "run_time", None)
        while every > 0 and not self._stopping.wait(timeout=every):
            if run_time and self.now() > float(run_time) - 0.1 * every:
                break  # the final snapshot is moments away; one more would only cost memory
            number += 1
            self.take(f"cp{number}")

    def take(self, label: str, types: bool = False) -> bool:
        """Snapshot under `label` and keep the diff from the previous label; False on failure."""
        top = int(option(self.options, "top_n"))
        started = self.now()
        try:
            self.snap_client.snapshot(label)
            if types:
                self.snap_client.types_snapshot(label)
            # t is when the snapshot returned (reports/steps.py relies on it); started_t is when asked
            self.rundir.append_event("snapshot", self.now(), label=label, started_t=round(started, 3))
            previous = self.labels[-1] if self.labels else None
            self.labels.append(label)
            if previous:
                self.save_diff(previous, label, top)
            return True
        except HookError as exc:
            log.warning("memsoak: snapshot %s failed: %s", label, exc)
            return False

    def save_diff(self, base: str, head: str, top: int) -> None:
        diff = self.snap_client.diff(base, head, top)
        self.rundir.write_json(f"snapshots/diff-{base}--{head}.json", diff)

    def final_snapshots(self) -> None:
        if not self.labels or self.engine_lost:
            return
        top = int(option(self.options, "top_n"))
        try:
            if self.take("final", types=True) and len(self.labels) > 2:
                self.save_diff("baseline", "final", top)
            types = self.snap_client.types_diff("baseline", "final", top)
            self.rundir.write_json("snapshots/types-baseline--final.json", types)
        except HookError as exc:
            log.warning("memsoak: final snapshot diffs failed: %s", exc)

    # --- the end ----------------------------------------------------------------------------
    def finalize(self, reason: str) -> int:
        """Stop measuring, write what is left and the report; returns the exit code. Runs once."""
        if self.finalized:
            return self.exit_code or 0
        self.finalized = True
        self._stopping.set()
        current = gevent.getcurrent()
        gevent.killall([g for g in self._greenlets if g is not current], block=True, timeout=10)
        if not self.engine_lost:
            try:
                self.poll_once()  # the samples taken since the last poll
            except HookError as exc:
                log.warning("memsoak: last poll failed: %s", exc)
            with gevent.Timeout(FINAL_BUDGET_S, False):  # False: on expiry just carry on
                self.final_snapshots()
        reason = self.stop_reason or reason
        self.rundir.write_json("requests.json", rowlib.requests_table(self.environment.runner.stats))
        self.rundir.append_event("stop", self.now(), reason=reason)
        self.rundir.close()
        for client in (self.poll_client, self.snap_client):
            client.close()
        self.exit_code = self._report(reason)
        return self.exit_code

    def _report(self, reason: str) -> int:
        fallback = FALLBACK_CODES.get(reason, 0)
        path = self.rundir.path
        try:
            import reports
            report = reports.analyze(reports.load_run(path))
            reports.write_reports(report, path)
            self.console_text = reports.render_console(report)
            self.report_path = str(path / "report.html")
            return int(report.exit_code)
        except Exception as exc:  # a broken analysis must not lose the run or its exit code
            log.error("memsoak: could not build the report for %s: %s: %s", path, type(exc).__name__, exc)
            self.console_text = f"memsoak: no report ({type(exc).__name__}: {exc}); data kept in {path}"
            return fallback
