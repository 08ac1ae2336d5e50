"""CI TEST HOOK, never part of an image: makes memsoak's report take MEMSOAK_CI_SLOW_REPORT_S longer.

docker/ci/run-stage.sh mounts this file into the Locust master (docker/ci/compose.slow-report.yml)
and loads it beside memsoak's locustfiles (`-f /opt/memsoak/memsoak/locustfiles,<this file>`). It stands in
for the analysis of a long soak: before the report is built, the master blocks for the given
seconds without yielding to gevent, exactly like a long CPU-bound analysis would, so no report file
exists until the delay is over. With compose's default 10 s stop grace, a master stopped while
writing would be SIGKILLed and lose the report; the stage asserts that the documented headless
flow (docker/headless-soak.sh) keeps it. Nothing in memsoak reads MEMSOAK_CI_SLOW_REPORT_S.
"""
from __future__ import annotations

import logging
import os

from gevent import monkey

from memsoak.plugin import soak

DELAY_S = float(os.environ.get("MEMSOAK_CI_SLOW_REPORT_S", "30"))
_blocking_sleep = monkey.get_original("time", "sleep")
_original_report = soak.Soak._report


def _slow_report(self: soak.Soak, reason: str) -> int:
    logging.getLogger("memsoak").warning(
        "memsoak CI test hook: the report is delayed by %.0f s (docker/ci/slow_report.py)", DELAY_S)
    _blocking_sleep(DELAY_S)
    return _original_report(self, reason)


soak.Soak._report = _slow_report
