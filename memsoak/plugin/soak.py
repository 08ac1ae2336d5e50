"""One soak run on the master (or local runner): poll, join, limit, snapshot, and finalize.

Two greenlets run while the test runs: the poller pulls new samples since the last sequence number,
joins each with Locust's stats into a row and appends it to series.jsonl at once, watches the RSS
limit and counts failed polls (N in a row: the engine is lost); the snapshotter takes the tracemalloc
baseline when warm-up ends and checkpoints after it, keeping each interval's diff. `finalize` runs
once, from whichever of test_stop / quitting comes first, and turns the run directory into a report.
"""
from __future__ import annotations

import logging
import math
import time
from array import array
from typing import Any, Callable

import gevent
from gevent.event import Event

from memsoak import contract
from memsoak.contract import MB, Row
from memsoak.hook import HookAnswerError, HookBusy, HookClient, HookError
from memsoak.plugin import rows as rowlib
from memsoak.plugin.arguments import baseline_at_s, checkpoint_every_s, option
from memsoak.rundir import RunDir
from memsoak import reports
from memsoak.reports import outcome as outcomes
from memsoak.reports.verdict.evidence import status_of

log = logging.getLogger("memsoak")
SNAPSHOT_TIMEOUT_S = 120.0   # a snapshot or diff of a big heap takes a while inside the engine
POLL_TIMEOUT_S = 5.0         # overall deadline of one poll (connect, headers and body together)
BUSY_LIMIT_S = 600.0         # polls refused 429 this long: measurement failed (the ring holds 3,600 samples)
RECENT_ROWS = 7200           # what the live UI keeps in memory (2 h at 1 s), slimmed (RECENT_FIELDS)
RECENT_FIELDS = ("t", "seq", "rss_bytes", "tree_rss_bytes", "traced_current_bytes", "allocated_blocks",
                 "users", "rps")
FINISH_INFLIGHT_S = 30.0     # at stop, what a checkpoint in flight may still take
FINAL_POLL_S = 10.0          # the last poll at stop, all pages together
FINAL_BUDGET_S = 90.0        # a struggling engine must not keep the harness from writing the report
LOCUST_HISTORY = 240         # Locust's own stats.history (one entry per 5 s) grows for ever: 20 min kept
PER_SECOND_KEPT_S = 120      # Locust's per-second request/failure counts (a dict key a second per name)
TRIM_EVERY_POLLS = 60
CATCH_UP_PAGES = 5           # pages of /samples one poll may read when behind (600 samples each)
AUTH_CHECK_REQUESTS = 5      # this many requests, every one refused 401/403: the key is wrong
AUTH_STATUSES = (401, 403)
# The exit code when no report could be built, by the reason the run stopped.
FALLBACK_CODES = {contract.EVENT_ENGINE_LOST: contract.EXIT_ENGINE_LOST,
                  contract.EVENT_RSS_LIMIT: contract.EXIT_RSS_LIMIT,
                  contract.EVENT_MEASUREMENT_FAILED: contract.EXIT_MEASUREMENT_FAILED,
                  contract.STOP_SIGNAL: contract.EXIT_INTERRUPTED,
                  contract.EVENT_AUTH_FAILED: contract.EXIT_BAD_CONFIG}


class RecentRows:
    """The last `capacity` rows' live-UI fields in preallocated arrays (8 B a field, not a dict a
    row): the harness's memory for them is fixed from the start. Iterates as dicts."""

    FLOAT_FIELDS = frozenset({"t", "rps"})

    def __init__(self, fields: tuple[str, ...], capacity: int) -> None:
        self.fields, self.capacity = fields, capacity
        self._data = [array("d", [math.nan]) * capacity for _ in fields]
        self.count = 0

    def append(self, row: Row) -> None:
        at = self.count % self.capacity
        for column, name in zip(self._data, self.fields):
            value = row.get(name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            column[at] = float(value) if ok else math.nan
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def _row(self, at: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, name in zip(self._data, self.fields):
            value = column[at]
            out[name] = None if math.isnan(value) else (value if name in self.FLOAT_FIELDS else int(value))
        return out

    def __iter__(self) -> Any:
        for number in range(self.count - len(self), self.count):
            yield self._row(number % self.capacity)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        number = (self.count + index) if index < 0 else (self.count - len(self) + index)
        return self._row(number % self.capacity)


class Soak:
    def __init__(self, environment: Any, rundir: RunDir, health: dict[str, Any],
                 stop_locust: Callable[[], None]) -> None:
        self.environment = environment
        self.options = environment.parsed_options
        self.rundir = rundir
        self.stop_locust = stop_locust
        url, token = option(self.options, "hook_url"), option(self.options, "hook_token")
        self.poll_client = HookClient(url, token, timeout_s=POLL_TIMEOUT_S)
        self.snap_client = HookClient(url, token, timeout_s=SNAPSHOT_TIMEOUT_S)
        self.t0 = time.monotonic()
        self.last_seq = int(health.get("last_seq") or 0)
        self.recent = RecentRows(RECENT_FIELDS, RECENT_ROWS)
        self._polls = 0
        self.stop_reason: str | None = None
        self.engine_lost = False
        self.measurement_failed = ""   # why rows could not be written or the hook's answers are garbage
        self.auth_failed = ""
        self.last_poll_error = ""
        self.auth_checked = False
        self.labels: list[str] = []
        self.finalized = False
        self.finished = Event()        # set when finalize() has returned (a second stop waits on it)
        self.exit_code: int | None = None
        self.console_text = ""
        self.report_path = ""
        self._stopping = Event()
        self._greenlets: list[gevent.Greenlet] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.rundir.append_event(contract.EVENT_TEST_START, 0.0)
        self._greenlets = [gevent.spawn(self._poll_loop), gevent.spawn(self._snapshot_loop)]

    # --- polling ----------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        failures = busy = 0
        interval = float(option(self.options, "sample_interval_s"))
        lost_after = int(option(self.options, "engine_lost_polls"))
        # A 429 means another local caller spent the hook's shared budget: the engine answers and its
        # ring keeps the samples, so it is not a lost poll. Bounded all the same: refused for longer
        # than BUSY_LIMIT_S, the rows would start to fall out of the ring, and the run is not evidence.
        busy_since = 0.0
        while not self._stopping.is_set():
            wait_s = interval
            try:
                self.poll_once()
                failures = busy = 0
            except HookBusy as exc:
                busy += 1
                busy_since = busy_since if busy > 1 else time.monotonic()
                self.last_poll_error = str(exc)
                log.warning("memsoak: the hook is busy (poll %d refused, retrying after %.0f s): %s",
                            busy, exc.retry_after_s, exc)
                if time.monotonic() - busy_since > BUSY_LIMIT_S:
                    self.fail_measurement(f"the hook refused every poll for {BUSY_LIMIT_S:.0f} s (429: its "
                                          f"shared budget kept spent by another caller; use memsoak-run --token)")
                    return
                wait_s = max(interval, exc.retry_after_s)
            except HookError as exc:
                failures += 1
                self.last_poll_error = str(exc)
                log.warning("memsoak: poll %d/%d failed: %s", failures, lost_after, exc)
                if failures >= lost_after:
                    if isinstance(exc, HookAnswerError):   # it answers, but garbage: not lost
                        self.fail_measurement(f"the hook answered garbage {failures} polls in a row: {exc}")
                        return
                    self.engine_lost = True
                    self._event(contract.EVENT_ENGINE_LOST, last_seq=self.last_seq, error=str(exc))
                    log.error("memsoak: engine lost: hook unreachable for %d polls in a row (last sample "
                              "seq %d): %s", failures, self.last_seq, exc)
                    self.request_stop(contract.EVENT_ENGINE_LOST)
                    return
            except OSError as exc:   # series.jsonl could not be written (disk full, I/O error)
                self.fail_measurement(f"rows could not be written ({type(exc).__name__}: {exc}); "
                                      f"rows after seq {self.rundir.last_seq_written} are missing")
                return
            self._check_auth()
            self._trim_locust_history()
            self._stopping.wait(timeout=wait_s)

    def _event(self, kind: str, **fields: Any) -> None:
        """An event, unless the disk refuses it: the outcome is kept in memory either way."""
        try:
            self.rundir.append_event(kind, self.now(), **fields)
        except OSError as exc:
            log.error("memsoak: could not record the %s event: %s", kind, exc)

    def fail_measurement(self, why: str) -> None:
        """Rows cannot be recorded or trusted: stop the load at once (load without rows is waste)."""
        if self.measurement_failed:
            return
        self.measurement_failed = why
        log.error("memsoak: measurement failed: %s; stopping the test", why)
        self._event(contract.EVENT_MEASUREMENT_FAILED, error=why, last_seq=self.last_seq,
                    last_written_seq=self.rundir.last_seq_written)
        self.request_stop(contract.EVENT_MEASUREMENT_FAILED)

    def _check_auth(self) -> None:
        """Every one of the first requests refused 401/403: a wrong key; end the run (exit 13)."""
        if self.auth_checked or self.stop_reason:
            return
        stats = self.environment.runner.stats
        total = stats.total
        if total.num_requests < AUTH_CHECK_REQUESTS:
            return
        self.auth_checked = True
        if total.num_failures < total.num_requests:
            return
        texts = [rowlib.error_text(error.error) for error in list(stats.errors.values())]
        if texts and all(status_of(text) in AUTH_STATUSES for text in texts):
            self.auth_failed = (f"the first {total.num_requests} requests were all refused ({texts[0]}): "
                                "the engine does not accept the API key; check --api-key and "
                                "--api-key-header (MEMSOAK_API_KEY / MEMSOAK_API_KEY_HEADER)")
            log.error("memsoak: %s", self.auth_failed)
            self._event(contract.EVENT_AUTH_FAILED, error=self.auth_failed)
            self.request_stop(contract.EVENT_AUTH_FAILED)

    def _trim_locust_history(self) -> None:
        """Locust keeps, for ever, a stats.history entry per 5 s and a per-second count per request
        name: over 24 h that is the harness's own leak. Only recent ones are read (current RPS: the
        last 10 s; the web UI's charts), so older ones are dropped."""
        self._polls += 1
        if self._polls % TRIM_EVERY_POLLS:
            return
        stats = self.environment.runner.stats
        history = getattr(stats, "history", None)
        if isinstance(history, list) and len(history) > LOCUST_HISTORY:
            del history[:-LOCUST_HISTORY]
        oldest = int(time.time()) - PER_SECOND_KEPT_S
        for entry in [stats.total, *list(stats.entries.values())]:
            for counts in (getattr(entry, "num_reqs_per_sec", None), getattr(entry, "num_fail_per_sec", None)):
                if isinstance(counts, dict):
                    for second in [k for k in counts if k < oldest]:
                        del counts[second]

    def poll_once(self, budget_s: float | None = None) -> int:
        """Fetch, join and append every sample newer than the last one, page by page; returns how many.

        `budget_s` bounds the pages together (the final poll); otherwise up to CATCH_UP_PAGES."""
        deadline = time.monotonic() + (budget_s or 0.0)
        fetched = 0
        for page in range(10_000 if budget_s else CATCH_UP_PAGES):
            answer = self.poll_client.samples(since=self.last_seq)
            samples = [s for s in answer["samples"] if s["seq"] > self.last_seq]
            if answer.get("dropped"):
                log.warning("memsoak: the hook dropped %s samples before they were read", answer["dropped"])
            if not samples:
                return fetched
            runner = self.environment.runner
            for row in rowlib.join(samples, rowlib.load_side(runner), self.now()):
                self.rundir.append_row(row)
                self.recent.append(row)
                self.last_seq = max(self.last_seq, int(row["seq"]))
                self._check_rss(row)
            fetched += len(samples)
            last = answer.get("last_seq")
            if not isinstance(last, int) or last <= self.last_seq or (budget_s and time.monotonic() > deadline):
                return fetched
        return fetched

    def _check_rss(self, row: Row) -> None:
        """The RSS limit, by the rule the report applies too (contract.over_rss_limit)."""
        if self.stop_reason:
            return
        limit_mb = float(option(self.options, "rss_limit_mb"))
        rss = contract.over_rss_limit(row, limit_mb)
        if rss is not None:
            self._event(contract.EVENT_RSS_LIMIT, rss_bytes=rss, limit_bytes=int(limit_mb * MB))
            log.error("memsoak: engine RSS %.1f MB is above --rss-limit-mb %.0f: stopping the test",
                      rss / MB, limit_mb)
            self.request_stop(contract.EVENT_RSS_LIMIT)

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
        self._event(contract.EVENT_WARMUP_END)
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
            # t is when the snapshot returned (memsoak/reports/stats/steps.py relies on it); started_t is when asked
            self._event(contract.EVENT_SNAPSHOT, label=label, started_t=round(started, 3))
            previous = self.labels[-1] if self.labels else None
            self.labels.append(label)
            if previous:
                self.save_diff(previous, label, top)
            return True
        except HookError as exc:
            log.warning("memsoak: snapshot %s failed: %s", label, exc)
            return False
        except OSError as exc:
            self.fail_measurement(f"snapshot diff could not be written ({type(exc).__name__}: {exc})")
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
        self.record_alloc_tracking()

    def record_alloc_tracking(self) -> None:
        """Which allocation mode ran and what its tracker held at the end, for the report."""
        try:
            health = self.snap_client.health()
        except HookError as exc:
            log.warning("memsoak: could not read the allocation tracker's figures: %s", exc)
            return
        self._event(contract.EVENT_ALLOC_TRACKING, mode=health.get("alloc_mode"), note=health.get("alloc_note"),
                    sampler=health.get("alloc_sampler"), tracemalloc_frames=health.get("tracemalloc_frames"),
                    config={k: (health.get("config") or {}).get(k) for k in ("sample_bytes", "sample_frames")})

    # --- the end ----------------------------------------------------------------------------
    def finalize(self, reason: str) -> int:
        """Stop measuring, write what is left and the report; returns the exit code. Runs once."""
        if self.finalized:
            return self.exit_code or 0
        self.finalized = True
        try:
            return self._finalize(reason)
        finally:
            self.finished.set()

    def _finalize(self, reason: str) -> int:
        self._stopping.set()
        current = gevent.getcurrent()
        others = [g for g in self._greenlets if g is not current]
        # a checkpoint in flight (snapshot, then its diff) finishes rather than losing its diff;
        # bounded: a poll ends within its deadline, a snapshot within FINISH_INFLIGHT_S
        gevent.joinall(others, timeout=FINISH_INFLIGHT_S)
        gevent.killall(others, block=True, timeout=10)
        if not (self.engine_lost or self.measurement_failed):
            try:
                with gevent.Timeout(FINAL_POLL_S, HookError(f"the last poll took over {FINAL_POLL_S:g} s")):
                    self.poll_once(budget_s=FINAL_POLL_S)  # the samples taken since the last poll
            except HookError as exc:
                log.warning("memsoak: last poll failed: %s", exc)
            except OSError as exc:
                self.fail_measurement(f"the last rows could not be written ({type(exc).__name__}: {exc})")
            if not self.measurement_failed:
                with gevent.Timeout(FINAL_BUDGET_S, False):  # False: on expiry just carry on
                    self.final_snapshots()
        reason = self.stop_reason or reason
        try:
            self.rundir.write_json("requests.json", rowlib.requests_table(self.environment.runner.stats))
        except OSError as exc:
            self.fail_measurement(f"requests.json could not be written ({type(exc).__name__}: {exc})")
        self._event(contract.EVENT_STOP, reason=reason, last_seq=self.last_seq)
        self.rundir.close()
        for client in (self.poll_client, self.snap_client):
            client.close()
        self.exit_code = self._report(reason)
        return self.exit_code

    def _fallback(self, reason: str) -> int:
        if self.auth_failed:
            return contract.EXIT_BAD_CONFIG
        if self.measurement_failed:
            return contract.EXIT_MEASUREMENT_FAILED
        return FALLBACK_CODES.get(reason, contract.EXIT_MEASUREMENT_FAILED)

    def _report(self, reason: str) -> int:
        path = self.rundir.path
        try:
            report = reports.analyze(reports.load_run(path))
        except Exception as exc:  # a broken analysis must not lose the run or its exit code
            code = self._fallback(reason)
            why = self.auth_failed or self.measurement_failed or f"{type(exc).__name__}: {exc}"
            log.error("memsoak: could not build the report for %s: %s: %s", path, type(exc).__name__, exc)
            self.console_text = f"memsoak: no report ({why}); data kept in {path}"
            return code
        if self.measurement_failed and report.outcome in (outcomes.PASS, outcomes.INSUFFICIENT,
                                                          outcomes.INTERRUPTED, outcomes.INVALID_LOAD):
            # the event could not be written (disk full): what the harness knows still decides
            report.outcome, report.exit_code = outcomes.MEASUREMENT_FAILED, outcomes.exit_code(outcomes.MEASUREMENT_FAILED)
            report.headline = f"MEASUREMENT FAILED: {self.measurement_failed}"
        self.console_text = reports.render_console(report)
        try:
            reports.write_reports(report, path)
            self.report_path = str(path / "report.html")
        except OSError as exc:
            log.error("memsoak: could not write the reports into %s: %s", path, exc)
            self.console_text += f"\nmemsoak: reports not written ({type(exc).__name__}: {exc})"
        return int(report.exit_code)
