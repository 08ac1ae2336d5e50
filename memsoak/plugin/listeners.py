"""Wiring memsoak into Locust's events: what happens on init, test start, stop, quit, and on workers.

Only the master or the local runner measures (workers never poll the hook). In headless mode the
report is written on `quitting` (on a master the workers' last stats arrive after `test_stop`); in
web UI mode on `test_stop`, so every run started from the UI gets its own run directory and report.
Ctrl-C and SIGTERM reach `quitting` too, so they still produce a report from what was measured.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

import gevent
import locust
from locust import events
from locust.runners import (STATE_CLEANUP, STATE_MISSING, STATE_SPAWNING, STATE_STOPPED, STATE_STOPPING,
                            WORKER_REPORT_INTERVAL, STATE_RUNNING, MasterRunner, WorkerRunner)

import memsoak
from memsoak.hook import HookClient, HookError
from memsoak import contract
from memsoak.plugin.arguments import (check_results_dir, option, redact, secret_values,
                                      settings_of, validate)
from memsoak.rundir import RunDir
from memsoak.plugin.soak import Soak
from memsoak.plugin import status

log = logging.getLogger("memsoak")
BAD_CONFIG = contract.EXIT_BAD_CONFIG
INTERRUPTED = contract.EXIT_INTERRUPTED
SECOND_STOP_WAIT_S = 600.0   # a second SIGTERM waits this long for the first stop's report


class State:
    """The plugin's process-wide state: the run in progress and the last finished one."""
    current: Soak | None = None
    last: Soak | None = None
    printed = False
    worker_reports: dict[str, int] = {}  # stats messages received per worker (master only)


@events.worker_report.add_listener
def _count_worker_report(client_id: str, **_kwargs: Any) -> None:
    State.worker_reports[client_id] = State.worker_reports.get(client_id, 0) + 1


def quit_after_final_stats(runner: Any) -> None:
    """Make a master's quit stop the workers first and wait for their last stats message.

    Locust's MasterRunner.quit() tells workers to quit and gives their final stats 0.5 s before it
    stops listening; on a busy machine whole report intervals are lost, and the report's request
    counts then fall short of what the workers sent. Stopping first (workers stop their users and
    keep reporting) and waiting for one more report from each worker closes that gap.
    """
    original_quit = runner.quit

    def quit() -> None:
        if runner.state in (STATE_RUNNING, STATE_SPAWNING):
            runner.stop()
        # Only workers still connected can send one more report. Locust calls quit() up to three
        # times in a headless run (run time, "the last worker quit", shutdown); waiting on workers
        # that already left cost the full deadline (8 s) at every stop.
        connected = {client.id for client in runner.clients.all if client.state != STATE_MISSING}
        before = {c: State.worker_reports.get(c, 0) for c in connected}
        deadline = time.monotonic() + 2 * WORKER_REPORT_INTERVAL + 2
        while time.monotonic() < deadline and any(
                c in runner.clients and State.worker_reports.get(c, 0) <= n for c, n in before.items()):
            gevent.sleep(0.2)
        original_quit()

    runner.quit = quit


def measures(environment: Any) -> bool:
    return environment.runner is not None and not isinstance(environment.runner, WorkerRunner)


def headless(environment: Any) -> bool:
    return bool(getattr(environment.parsed_options, "headless", False)) or environment.web_ui is None


HEALTH_WAIT_S = 10.0   # start-up: the hook's /health, connect + answer together


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


@events.init.add_listener
def _on_init(environment: Any, **_kwargs: Any) -> None:
    if not measures(environment):
        return
    options = environment.parsed_options
    if isinstance(environment.runner, MasterRunner):
        quit_after_final_stats(environment.runner)
    if option(options, "quick") and not getattr(options, "run_time", None):
        options.run_time = contract.QUICK_RUN_S
    problems = config_problems(options)
    if problems:   # before any load is sent, UI or headless
        sys.stderr.write("\n".join(problems) + "\n")
        sys.exit(BAD_CONFIG)
    if environment.web_ui is not None:
        from memsoak.plugin import webui
        webui.install(environment, State)
    if headless(environment):
        try:
            check_hook(options)
        except HookError as exc:  # fail before any load is sent
            sys.stderr.write(hook_hint(exc, options) + "\n")
            sys.exit(BAD_CONFIG)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    if not measures(environment):
        return
    options = environment.parsed_options
    if State.current is not None and not State.current.finalized:
        State.current.finalize("user")
    problems = config_problems(options)   # the web form may have changed them since init
    if problems:
        for line in problems:
            log.error(line)
        environment.process_exit_code = BAD_CONFIG
        gevent.spawn(stop_locust, environment, quit_too=headless(environment))
        return
    try:
        health = check_hook(options)
    except HookError as exc:
        log.error(hook_hint(exc, options))
        environment.process_exit_code = BAD_CONFIG
        gevent.spawn(stop_locust, environment, quit_too=headless(environment))
        return
    try:
        rundir = RunDir(option(options, "results_dir"), option(options, "run_id"))
    except OSError as exc:
        log.error("memsoak: cannot create the run directory under --results-dir %r (%s): choose a "
                  "writable directory and a new --run-id", option(options, "results_dir"), exc.strerror or exc)
        environment.process_exit_code = BAD_CONFIG
        gevent.spawn(stop_locust, environment, quit_too=headless(environment))
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
    State.printed = False
    State.current = Soak(environment, rundir, health,
                         stop_locust=lambda: stop_locust(environment, quit_too=True))
    State.current.start()
    status.start(environment, State.current)


def stop_locust(environment: Any, quit_too: bool) -> None:
    """Stop users (workers report their last stats), then end the process in both UI and headless."""
    runner = environment.runner
    runner.stop()
    if quit_too:
        runner.quit()
        if environment.web_ui is not None:
            environment.web_ui.stop()


def finish(environment: Any, reason: str) -> None:
    soak = State.current
    if soak is None:
        return
    if soak.finalized:
        # A second stop while the first is still writing (SIGTERM during the final poll, snapshots or
        # the report): Locust exits as soon as this returns, so wait for the first (bounded), then
        # exit with its code; never 0 for a run whose report was not finished.
        if not soak.finished.wait(timeout=SECOND_STOP_WAIT_S) or soak.exit_code is None:
            log.error("memsoak: stopped again before the report was written; run `memsoak report %s`",
                      soak.rundir.path)
            environment.process_exit_code = INTERRUPTED
        else:
            environment.process_exit_code = soak.exit_code
        return
    code = soak.finalize(reason)
    State.last = soak
    environment.process_exit_code = code
    if not headless(environment):
        print_verdict()


def print_verdict() -> None:
    soak = State.last
    if soak is None or State.printed:
        return
    State.printed = True
    print(soak.console_text, flush=True)
    print(f"memsoak: report {soak.report_path or soak.rundir.path} (exit code {soak.exit_code})", flush=True)
    status.print_final_hints(soak.environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    if measures(environment) and not headless(environment):
        finish(environment, "user")


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    if not measures(environment):
        return
    # Stopped before quitting: the run time (or shape) ended it; still running: a signal did.
    stopped = environment.runner.state in (STATE_STOPPED, STATE_STOPPING, STATE_CLEANUP)
    finish(environment, "duration" if stopped else "signal")
    if State.last is not None and State.last.exit_code is not None:
        environment.process_exit_code = State.last.exit_code


@events.quit.add_listener
def _on_quit(exit_code: int, **_kwargs: Any) -> None:
    print_verdict()  # after Locust's own tables, so the verdict is the last thing on screen
