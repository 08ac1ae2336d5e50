"""memsoak on one Locust environment: what happens on init, test start, stop, quit, and on workers.

`MemsoakPlugin` is registered on the environment when Locust's `init` fires (as Locust's own
`locust.contrib` plugins are: an object whose `register(environment)` adds its listeners to
`environment.events`) and is reachable as `environment.memsoak`; it holds the run in progress and
the last finished one, so two environments in one process never share state. Only the master or
the local runner measures: on a worker nothing is registered (workers never poll the hook).

In headless mode the report is written on `quitting`; in web UI mode on `test_stop`, so every run
started from the UI gets its own run directory and report. Ctrl-C and SIGTERM reach `quitting` too,
so they still produce a report from what was measured. On a master the workers' last stats must
arrive before the report counts requests: Locust's `quit()` tells workers to quit and gives their
final stats 0.5 s, so at `test_stop` the plugin tells workers still running to stop and waits for
one more stats message from each (bounded), and at `quitting` a master still running is stopped
first. No Locust method is replaced.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

import gevent
import locust
from locust.runners import (STATE_CLEANUP, STATE_MISSING, STATE_SPAWNING, STATE_STOPPED, STATE_STOPPING,
                            WORKER_REPORT_INTERVAL, STATE_RUNNING, MasterRunner, WorkerRunner)

import memsoak
from memsoak import contract
from memsoak.hook import HookClient, HookError
from memsoak.plugin import status, webui
from memsoak.plugin.arguments import check_results_dir, option, redact, secret_values, settings_of, validate
from memsoak.plugin.soak import Soak
from memsoak.rundir import RunDir

log = logging.getLogger("memsoak")
SECOND_STOP_WAIT_S = 600.0   # a second SIGTERM waits this long for the first stop's report
HEALTH_WAIT_S = 10.0         # start-up: the hook's /health, connect + answer together
WORKERS_STOP_EXTRA_S = 60.0  # workers told to stop get --stop-timeout plus this (as Locust's own stop)


def measures(environment: Any) -> bool:
    return environment.runner is not None and not isinstance(environment.runner, WorkerRunner)


def headless(environment: Any) -> bool:
    return bool(getattr(environment.parsed_options, "headless", False)) or environment.web_ui is None


def check_hook(options: Any) -> dict[str, Any]:
    """GET /health within HEALTH_WAIT_S overall (a hook trickling bytes must not hang the start)."""
    client = HookClient(option(options, "hook_url"), option(options, "hook_token"), timeout_s=HEALTH_WAIT_S)
    log.info("memsoak: waiting up to %.0f s for the hook's /health at %s", HEALTH_WAIT_S,
             option(options, "hook_url"))
    try:
        return client.health()
    finally:
        client.close()


def config_problems(options: Any) -> list[str]:
    """Every bad flag/variable/config value and an unusable --results-dir, one line each."""
    problems = validate(options)
    if not any("results_dir" in line or "--results-dir" in line or "RESULTS_DIR" in line for line in problems):
        bad_dir = check_results_dir(str(option(options, "results_dir")))
        if bad_dir:
            problems.append(bad_dir)
    return problems


def hook_hint(exc: Exception, options: Any) -> str:
    return (f"memsoak: {exc}; start the engine under `memsoak-run -- ...` or point --hook-url "
            f"(now {option(options, 'hook_url')}) at its hook")


def stop_locust(environment: Any, quit_too: bool) -> None:
    """Stop users (workers report their last stats), then end the process in both UI and headless."""
    runner = environment.runner
    runner.stop()
    if quit_too:
        runner.quit()
        if environment.web_ui is not None:
            environment.web_ui.stop()


class MemsoakPlugin:
    """memsoak's listeners and state for one Locust environment (the master's or the local one)."""

    def __init__(self) -> None:
        self.environment: Any = None
        self.current: Soak | None = None   # the run in progress (or the last, until the next starts)
        self.last: Soak | None = None      # the last finished run, whose verdict is printed
        self.printed = False
        self.worker_reports: dict[str, int] = {}  # stats messages received per worker (master only)

    def register(self, environment: Any) -> None:
        """Attach to `environment`: check the configuration and the hook (exit 13 before any load),
        then listen to its events. Called from Locust's `init` event."""
        self.environment = environment
        environment.memsoak = self
        self._check_at_init()
        hooks = environment.events
        hooks.worker_report.add_listener(self._count_worker_report)
        hooks.test_start.add_listener(self._on_test_start)
        hooks.test_stop.add_listener(self._on_test_stop)
        hooks.quitting.add_listener(self._on_quitting)
        hooks.quit.add_listener(self._on_quit)

    # --- start --------------------------------------------------------------------------------
    def _check_at_init(self) -> None:
        environment = self.environment
        options = environment.parsed_options
        if option(options, "quick") and not getattr(options, "run_time", None):
            options.run_time = contract.QUICK_RUN_S
        problems = config_problems(options)
        if problems:   # before any load is sent, UI or headless
            sys.stderr.write("\n".join(problems) + "\n")
            sys.exit(contract.EXIT_BAD_CONFIG)
        if environment.web_ui is not None:
            webui.install(environment, self)
        if headless(environment):
            try:
                check_hook(options)
            except HookError as exc:  # fail before any load is sent
                sys.stderr.write(hook_hint(exc, options) + "\n")
                sys.exit(contract.EXIT_BAD_CONFIG)

    def _refuse_start(self) -> None:
        environment = self.environment
        environment.process_exit_code = contract.EXIT_BAD_CONFIG
        gevent.spawn(stop_locust, environment, quit_too=headless(environment))

    def _on_test_start(self, environment: Any, **_kwargs: Any) -> None:
        if environment is not self.environment:
            return
        options = environment.parsed_options
        if self.current is not None and not self.current.finalized:
            self.current.finalize(contract.STOP_USER)
        problems = config_problems(options)   # the web form may have changed them since init
        if problems:
            for line in problems:
                log.error(line)
            self._refuse_start()
            return
        try:
            health = check_hook(options)
        except HookError as exc:
            log.error(hook_hint(exc, options))
            self._refuse_start()
            return
        try:
            rundir = RunDir(option(options, "results_dir"), option(options, "run_id"))
        except OSError as exc:
            log.error("memsoak: cannot create the run directory under --results-dir %r (%s): choose a "
                      "writable directory and a new --run-id", option(options, "results_dir"), exc.strerror or exc)
            self._refuse_start()
            return
        rundir.write_json("run.json", {
            "run_id": rundir.run_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "memsoak_version": getattr(memsoak, "__version__", "0.1.0"),
            "locust_version": locust.__version__,
            "host": environment.host,
            "hook_url": option(options, "hook_url"),
            "settings": settings_of(options),
            "health": health,
            "argv": redact(sys.argv, secret_values(options)),
            "runner": type(environment.runner).__name__,
        })
        log.info("memsoak: run directory %s", rundir.path)
        self.printed = False
        self.current = Soak(environment, rundir, health,
                            stop_locust=lambda: stop_locust(environment, quit_too=True))
        self.current.start()
        status.start(environment, self.current)

    # --- the workers' last stats (master only) -------------------------------------------------
    def _count_worker_report(self, client_id: str, **_kwargs: Any) -> None:
        self.worker_reports[client_id] = self.worker_reports.get(client_id, 0) + 1

    def collect_final_worker_stats(self) -> None:
        """On a master: workers still running users are told to stop (Locust's quit() does not tell
        them before it quits them), then each connected worker's next stats message is awaited.

        A worker sends its stats every WORKER_REPORT_INTERVAL s and once more when it quits, but the
        master listens only 0.5 s after sending quit: on a busy machine whole report intervals were
        lost and the report's request counts fell short of what the workers sent."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return
        if runner.user_count:
            runner.send_message("stop")
            deadline = time.monotonic() + float(self.environment.stop_timeout or 0.0) + WORKERS_STOP_EXTRA_S
            while runner.user_count and time.monotonic() < deadline:
                gevent.sleep(0.2)
        # Only workers still connected can send one more report: waiting on workers that already
        # left cost the full deadline (8 s) at every stop.
        connected = {client.id for client in runner.clients.all if client.state != STATE_MISSING}
        before = {c: self.worker_reports.get(c, 0) for c in connected}
        deadline = time.monotonic() + 2 * WORKER_REPORT_INTERVAL + 2
        while time.monotonic() < deadline and any(
                c in runner.clients and self.worker_reports.get(c, 0) <= n for c, n in before.items()):
            gevent.sleep(0.2)

    # --- the end ------------------------------------------------------------------------------
    def finish(self, reason: str) -> None:
        environment = self.environment
        soak = self.current
        if soak is None:
            return
        if soak.finalized:
            # A second stop while the first is still writing (SIGTERM during the final poll, snapshots or
            # the report): Locust exits as soon as this returns, so wait for the first (bounded), then
            # exit with its code; never 0 for a run whose report was not finished.
            if not soak.finished.wait(timeout=SECOND_STOP_WAIT_S) or soak.exit_code is None:
                log.error("memsoak: stopped again before the report was written; run `memsoak report %s`",
                          soak.rundir.path)
                environment.process_exit_code = contract.EXIT_INTERRUPTED
            else:
                environment.process_exit_code = soak.exit_code
            return
        code = soak.finalize(reason)
        self.last = soak
        environment.process_exit_code = code
        if not headless(environment):
            self.print_verdict()

    def print_verdict(self) -> None:
        soak = self.last
        if soak is None or self.printed:
            return
        self.printed = True
        print(soak.console_text, flush=True)
        print(f"memsoak: report {soak.report_path or soak.rundir.path} (exit code {soak.exit_code})", flush=True)
        status.print_final_hints(soak.environment)

    def _on_test_stop(self, environment: Any, **_kwargs: Any) -> None:
        if environment is not self.environment:
            return
        self.collect_final_worker_stats()
        if not headless(environment):
            self.finish(contract.STOP_USER)

    def _on_quitting(self, environment: Any, **_kwargs: Any) -> None:
        if environment is not self.environment:
            return
        runner = environment.runner
        if isinstance(runner, MasterRunner) and runner.state in (STATE_RUNNING, STATE_SPAWNING):
            # a signal on a master: stop the workers and take their last stats before the report
            runner.stop()
            stopped = False
        else:
            # Stopped before quitting: the run time (or shape) ended it; still running: a signal did.
            stopped = runner.state in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP)
        self.finish(contract.STOP_DURATION if stopped else contract.STOP_SIGNAL)
        if self.last is not None and self.last.exit_code is not None:
            environment.process_exit_code = self.last.exit_code

    def _on_quit(self, exit_code: int, **_kwargs: Any) -> None:
        self.print_verdict()  # after Locust's own tables, so the verdict is the last thing on screen


def register(environment: Any, **_kwargs: Any) -> MemsoakPlugin | None:
    """Locust's `init` listener: a MemsoakPlugin on every environment that measures (never twice)."""
    if not measures(environment):
        return None
    plugin = getattr(environment, "memsoak", None)
    if isinstance(plugin, MemsoakPlugin):
        return plugin
    plugin = MemsoakPlugin()
    plugin.register(environment)
    return plugin
