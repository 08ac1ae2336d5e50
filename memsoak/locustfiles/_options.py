"""Registers the chat users' mix settings (`_mix.py`) as Locust arguments and checks them early.

As Locust arguments they show in the web UI's start form, read `MEMSOAK_<NAME>` from the environment
and `name = value` from locust.conf, and travel from master to workers with the spawn message. A bad
mix is refused before load: one line and exit 13 headless, an error and no run in the web UI.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import gevent
from locust import events

from memsoak.locustfiles._mix import MIX_KNOBS, MixError, MixOptions, volatile_headers
from memsoak.contract import EXIT_BAD_CONFIG as BAD_CONFIG

log = logging.getLogger("memsoak.users")


@events.init_command_line_parser.add_listener
def _register(parser: Any, **_kwargs: Any) -> None:
    # Fires again whenever the web UI renders its page: registering is idempotent per parser and
    # has no side effects.
    group = parser  # only LocustArgumentParser.add_argument knows include_in_web_ui
    for spec in MIX_KNOBS:
        group.add_argument(spec.flag, type=spec.type, default=spec.default, env_var=spec.env_var,
                           help=f"{spec.help} (default {spec.default!r})", include_in_web_ui=True,
                           is_secret=spec.secret)


@events.init.add_listener
def _check_at_init(environment: Any, **_kwargs: Any) -> None:
    """Headless: a bad mix is one line and exit 13 before any load is sent."""
    if environment.runner is None or type(environment.runner).__name__ == "WorkerRunner":
        return
    try:
        mix = MixOptions.from_parsed(environment.parsed_options)
        for name in volatile_headers(mix.extra_headers):
            log.warning("memsoak: --extra-headers %s uses {uuid}/{rand}, which change with every request: "
                        "an engine that keeps state per client (rate limiter, per-client caches) keeps "
                        "one entry per request, a leak the harness itself causes. For a client identity "
                        "use {user_index}, e.g. \"X-Forwarded-For: 10.0.0.{user_index}\"", name)
    except MixError as exc:
        if getattr(environment.parsed_options, "headless", False):
            sys.stderr.write(f"memsoak: {exc}\n")
            sys.exit(BAD_CONFIG)
        log.error("memsoak: %s (fix it in the start form)", exc)


@events.test_start.add_listener
def _check_at_start(environment: Any, **_kwargs: Any) -> None:
    """Web UI: the start form may have changed the mix; refuse to run a bad one."""
    if environment.runner is None or type(environment.runner).__name__ == "WorkerRunner":
        return
    try:
        MixOptions.from_parsed(environment.parsed_options)
    except MixError as exc:
        log.error("memsoak: %s: stopping the test", exc)
        environment.process_exit_code = BAD_CONFIG
        gevent.spawn(environment.runner.stop)


