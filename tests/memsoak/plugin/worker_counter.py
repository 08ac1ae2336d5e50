"""Test instrumentation loaded next to locustfiles: each worker counts its own requests.

At quitting, a worker writes {"pid", "ppid", "requests": {"METHOD name": n}} to $MEMSOAK_TEST_COUNT_DIR, an
account independent of the master's aggregated stats.
"""
import json
import os
from collections import Counter

from locust import events
from locust.runners import WorkerRunner

_counts: Counter = Counter()


@events.request.add_listener
def _count(request_type, name, **_kwargs):
    _counts[f"{request_type} {name}"] += 1


@events.quitting.add_listener
def _write(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        folder = os.environ["MEMSOAK_TEST_COUNT_DIR"]
        with open(os.path.join(folder, f"worker-{os.getpid()}.json"), "w") as handle:
            json.dump({"pid": os.getpid(), "ppid": os.getppid(), "requests": dict(_counts)}, handle)
