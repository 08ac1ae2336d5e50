"""Test hook, loaded beside memsoak's locustfiles: the final snapshots take MEMSOAK_TEST_SLOW_FINAL_S
longer, yielding to gevent as a slow engine would, so a second SIGTERM arrives while the first stop is
still writing (tests/faults/test_faults.py). Nothing in memsoak reads the variable."""
from __future__ import annotations

import os

import gevent

from memsoak.plugin import soak

DELAY_S = float(os.environ.get("MEMSOAK_TEST_SLOW_FINAL_S", "15"))
_original = soak.Soak.final_snapshots


def _slow_final_snapshots(self: soak.Soak) -> None:
    print(f"memsoak test hook: final snapshots delayed {DELAY_S:.0f} s", flush=True)
    gevent.sleep(DELAY_S)
    _original(self)


soak.Soak.final_snapshots = _slow_final_snapshots
