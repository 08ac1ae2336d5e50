"""A locustfile with no users: each worker counts the requests it fired itself and writes them at quit.

The native stand-in loads it beside memsoak's locustfiles (`LOCUST_LOCUSTFILE=locustfiles,THIS`) so
the test can check the master's requests.json against what every worker really sent, counted on
the worker, independently of the stats the workers report to the master. Files land in
$MEMSOAK_TEST_COUNTER_DIR/<pid>.json.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from locust import events
from locust.runners import WorkerRunner

_requests: Counter[str] = Counter()
_failures: Counter[str] = Counter()


@events.request.add_listener
def _count(request_type: str, name: str, exception: Any = None, **_kwargs: Any) -> None:
    key = f"{request_type} {name}"
    _requests[key] += 1
    if exception is not None:
        _failures[key] += 1


@events.quitting.add_listener
def _write(environment: Any, **_kwargs: Any) -> None:
    # Workers fire their last requests before sending the final stats report and quitting.
    if not isinstance(environment.runner, WorkerRunner):
        return
    out = Path(os.environ["MEMSOAK_TEST_COUNTER_DIR"]) / f"{os.getpid()}.json"
    out.write_text(json.dumps({"client_id": environment.runner.client_id,
                               "requests": dict(_requests), "failures": dict(_failures)}))
